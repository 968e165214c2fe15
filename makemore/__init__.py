"""makemore: character-level language models that make more of what you give them.

The heart is the MLP of Bengio et al. (2003), "A Neural Probabilistic Language Model",
as built in Andrej Karpathy's "makemore part 2" lecture.
"""

__version__ = "0.1.0"

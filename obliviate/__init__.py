"""obliviate: make a causal LM forget chosen knowledge, prove it, and attack the result.

>>> import obliviate as ob
>>> lm = ob.load_model("tiny")
"""

__version__ = "0.1.0"

from obliviate.models import LoadedModel, load_model, save_model  # noqa: E402

__all__ = ["LoadedModel", "load_model", "save_model", "__version__"]

"""obliviate: make a causal LM forget chosen knowledge, prove it, and attack the result."""

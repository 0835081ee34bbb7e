"""`python -m obliviate` (needed by `accelerate launch -m obliviate ...`)."""

from obliviate.cli import main

main()

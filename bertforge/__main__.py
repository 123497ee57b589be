"""`python -m bertforge ...`, which is also what `torchrun ... -m bertforge ...` runs."""

from bertforge.cli.main import main

main()

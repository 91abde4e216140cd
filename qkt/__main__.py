"""`python -m qkt` runs the CLI."""

from qkt.cli.main import main

if __name__ == "__main__":
    main()

"""``python -m topology`` runs the command line."""

from topology.cli import main

if __name__ == "__main__":
    main()

"""``python -m seeding.cli``: the ``seed`` command."""

from seeding.cli import main

if __name__ == "__main__":
    main()

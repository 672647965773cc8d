"""``python -m batchnb`` is the ``batchnb`` command."""

from batchnb.cli import main

if __name__ == "__main__":
    main()

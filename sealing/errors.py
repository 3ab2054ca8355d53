"""What goes wrong with sealed files and keys."""


class SealError(Exception):
    """A sealed file is damaged or altered, its key is unknown, or a key file is unusable."""

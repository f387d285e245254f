"""Exception classes. Every one carries a message a person can act on."""


class CamiGeoError(Exception):
    """Base class: the message is shown to the user as it is, without a traceback."""


class ConfigError(CamiGeoError):
    """The configuration is invalid (unknown key, bad value)."""


class InputError(CamiGeoError):
    """An input file cannot be read at all (empty, binary, broken archive)."""

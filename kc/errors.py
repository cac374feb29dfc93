"""The project's own errors, so adapters can translate library and I/O failures at their seam."""


class KcError(Exception):
    """Base of every error Kommuncentral raises on purpose."""


class ConfigError(KcError):
    """Settings or data that cannot work (bad port, missing file)."""


class NotFound(KcError):
    """A district, agent or contact that does not exist."""


class InvalidInput(KcError):
    """Input from a user or a peer that we refuse, with a message fit to show."""


class TelephonyDown(KcError):
    """Asterisk (AMI) is unreachable; the caller of the action should retry or report."""


class CallerGone(KcError):
    """The caller hung up while we were talking to their channel."""


class AgiLinkError(KcError):
    """The FastAGI conversation broke (timeout, garbage, closed socket)."""

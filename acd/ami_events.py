"""The AMI inbound seam: the one list of events the service reads, and the typed events the
frames become.

`AMI_EVENTS` is the only list: the composition root hands it to the PBX configuration, whose
`manager.conf` lets no other event through (an anchored filter), and
`parse_event` turns each of these frames into a typed value for the distributor (or None for
the frames only the link itself reads).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Union

log = logging.getLogger(__name__)

Frame = Mapping[str, str]


@dataclass(frozen=True)
class CallerWaiting:
    """`UserEvent: KcWaiting`: a caller reached the waiting room (music on hold)."""
    contact_id: int
    uniqueid: str
    channel: str


@dataclass(frozen=True)
class HangupRequested:
    """A channel asked to hang up or left its bridge: says who ended a talking pair."""
    uniqueid: str


@dataclass(frozen=True)
class ChannelHungUp:
    uniqueid: str
    channel: str


@dataclass(frozen=True)
class DialEnded:
    """A dial from a channel ended (our agent legs dial the resident on a call-back)."""
    uniqueid: str
    status: str                       # ANSWER, NOANSWER, BUSY, ...


@dataclass(frozen=True)
class ChannelCreated:
    uniqueid: str
    channel: str


@dataclass(frozen=True)
class DeviceStateChanged:
    device: str                       # e.g. PJSIP/<agent id>
    state: str                        # NOT_INUSE, UNAVAILABLE, ...


@dataclass(frozen=True)
class ContactStatusChanged:
    endpoint: str
    status: str                       # Created, Reachable, Removed, Unreachable, ...


@dataclass(frozen=True)
class AttendedTransferred:
    """An attended transfer ended: the agent's leg (`transferer`, in the bridge with the caller)
    handed the caller over to the consulted number (`result` Success) or could not (Fail, ...)."""
    transferer: str                   # uniqueid of the original transferer channel
    second: str                       # uniqueid of the transferer's consultation channel
    transferee: str                   # uniqueid of the caller, when Asterisk names it
    result: str


AmiEvent = Union[CallerWaiting, HangupRequested, ChannelHungUp, DialEnded, ChannelCreated,
                 DeviceStateChanged, ContactStatusChanged, AttendedTransferred]


def _user_event(f: Frame) -> CallerWaiting | None:
    if f.get("UserEvent") != "KcWaiting":
        return None
    try:
        contact_id = int(f.get("ContactID", ""))
    except ValueError:
        log.warning("KcWaiting without a contact id: %s", dict(f))
        return None
    return CallerWaiting(contact_id, f.get("Uniqueid", ""), f.get("Channel", ""))


def _hangup_requested(f: Frame) -> HangupRequested:
    return HangupRequested(f.get("Uniqueid", ""))


# Event name -> how its frame becomes a typed event, for every event the distributor reads.
_PARSERS: dict[str, Callable[[Frame], AmiEvent | None]] = {
    "UserEvent": _user_event,
    "HangupRequest": _hangup_requested,
    "SoftHangupRequest": _hangup_requested,
    "BridgeLeave": _hangup_requested,
    "Hangup": lambda f: ChannelHungUp(f.get("Uniqueid", ""), f.get("Channel", "")),
    "DialEnd": lambda f: DialEnded(f.get("Uniqueid", ""), f.get("DialStatus", "")),
    "Newchannel": lambda f: ChannelCreated(f.get("Uniqueid", ""), f.get("Channel", "")),
    "DeviceStateChange": lambda f: DeviceStateChanged(f.get("Device", ""), f.get("State", "")),
    "ContactStatus": lambda f: ContactStatusChanged(f.get("EndpointName") or f.get("AOR", ""),
                                                    f.get("ContactStatus", "")),
    "AttendedTransfer": lambda f: AttendedTransferred(
        f.get("OrigTransfererUniqueid", ""), f.get("SecondTransfererUniqueid", ""),
        f.get("TransfereeUniqueid", ""), f.get("Result", "")),
}
# The fields the parsers above read from each event, and only these: what differs between
# Asterisk 16 and 22 (22 drops HangupRequest's Cause, adds Hangup's TechCause, numbers some
# causes differently) is never read. tests/pbx/test_asterisk_telephony.py checks these fields
# and the values below against the real Asterisk of each run. ContactStatus names its endpoint
# in EndpointName, or only in AOR (one AOR per agent here).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "UserEvent": ("UserEvent", "Uniqueid", "Channel"),   # + ContactID for KcWaiting
    "HangupRequest": ("Uniqueid",), "SoftHangupRequest": ("Uniqueid",), "BridgeLeave": ("Uniqueid",),
    "Hangup": ("Uniqueid", "Channel"),
    "DialEnd": ("DestUniqueid", "DialStatus"),   # + Uniqueid when a channel dialled
                                                 # (an Originate's own dial has none)
    "Newchannel": ("Uniqueid", "Channel"),
    "DeviceStateChange": ("Device", "State"),
    "ContactStatus": ("ContactStatus", "AOR"),
    "AttendedTransfer": ("Result", "OrigTransfererUniqueid"),
}
# Device states of a phone that is not registered; contact statuses up and down.
UNREGISTERED_STATES = ("UNAVAILABLE", "INVALID", "UNKNOWN")
CONTACT_UP = ("Created", "Reachable", "NonQualified")
CONTACT_DOWN = ("Removed", "Unreachable")

# What the link itself reads: the final answer of an asynchronous Originate, and boot/shutdown.
LINK_EVENTS = ("OriginateResponse", "FullyBooted", "Shutdown")

# The only events the PBX sends us.
AMI_EVENTS: tuple[str, ...] = (*_PARSERS, *LINK_EVENTS)


def parse_event(frame: Frame) -> AmiEvent | None:
    """A frame as a typed event; None for events the distributor does not read."""
    parser = _PARSERS.get(frame.get("Event", ""))
    return parser(frame) if parser is not None else None

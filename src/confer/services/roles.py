"""Meeting roles and what each may do: the contract's 权限控制 table, enforced on the server.

| role        | may                                                                  |
|-------------|----------------------------------------------------------------------|
| host        | everything: end the meeting, kick, mute all, recording, change roles |
| co_host     | mute participants, manage screen share; publish, share, chat         |
| participant | publish (speak), share the screen (when granted or not required), chat|
| audience    | watch and chat only                                                  |
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    HOST = "host"
    CO_HOST = "co_host"
    PARTICIPANT = "participant"
    AUDIENCE = "audience"


class Permission(StrEnum):
    UPDATE_MEETING = "update_meeting"
    END_MEETING = "end_meeting"
    KICK = "kick"
    MUTE_ALL = "mute_all"
    RECORDING = "recording"
    CHANGE_ROLE = "change_role"
    MUTE_OTHERS = "mute_others"
    MANAGE_SCREEN_SHARE = "manage_screen_share"
    PUBLISH = "publish"
    SHARE_SCREEN = "share_screen"
    CHAT = "chat"


_ALL = frozenset(Permission)
_CO_HOST = frozenset(
    {
        Permission.MUTE_OTHERS,
        Permission.MANAGE_SCREEN_SHARE,
        Permission.PUBLISH,
        Permission.SHARE_SCREEN,
        Permission.CHAT,
    }
)
_PARTICIPANT = frozenset({Permission.PUBLISH, Permission.SHARE_SCREEN, Permission.CHAT})
_AUDIENCE = frozenset({Permission.CHAT})

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.HOST: _ALL,
    Role.CO_HOST: _CO_HOST,
    Role.PARTICIPANT: _PARTICIPANT,
    Role.AUDIENCE: _AUDIENCE,
}


def can(role: str, permission: Permission) -> bool:
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False


def may_share_screen(role: str, granted: bool, permission_required: bool) -> bool:
    """A participant needs the host's grant when the meeting requires it; hosts never do."""
    if not can(role, Permission.SHARE_SCREEN):
        return False
    if can(role, Permission.MANAGE_SCREEN_SHARE):
        return True
    return granted or not permission_required

"""HOT versions: each ``heat_template_version`` (date or release name) and the exact set of
intrinsic functions and condition functions it allows."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from .errors import InvalidTemplateVersion

_CFN_2013 = frozenset(
    {"Fn::GetAZs", "Ref", "Fn::Select", "Fn::Join", "Fn::Split", "Fn::Replace", "Fn::Base64",
     "Fn::MemberListToMap", "Fn::ResourceFacade"}
)

_V2013 = frozenset(
    {"get_param", "get_resource", "get_attr", "list_join", "str_replace", "resource_facade",
     "get_file"}
) | _CFN_2013
_V2014 = frozenset(
    {"get_attr", "get_file", "get_param", "get_resource", "list_join", "resource_facade",
     "str_replace", "Fn::Select"}
)
_V2015_04 = _V2014 | {"digest", "repeat"}
_V2015_10 = (_V2015_04 - {"Fn::Select"}) | {"str_split"}
_V2016_04 = _V2015_10 | {"map_merge"}
_V2016_10 = _V2016_04 | {"yaql", "map_replace", "if"}
_V2017_02 = _V2016_10 | {"str_replace_strict"}
_V2017_09 = _V2017_02 | {"filter", "make_url", "list_concat", "list_concat_unique", "contains",
                         "str_replace_vstrict"}

_COND_2016 = frozenset({"equals", "get_param", "not", "and", "or"})
_COND_2017_09 = _COND_2016 | {"yaql", "contains"}


@dataclass(frozen=True)
class HotVersion:
    date: str
    name: str | None
    functions: frozenset[str]
    condition_functions: frozenset[str]
    # features that changed over time
    has_conditions: bool          # the `conditions` section and `condition` keys
    list_join_multiple: bool      # list_join accepts several lists; values JSON-serialised
    get_attr_all: bool            # get_attr with only a resource name returns all attributes
    repeat_permutations: bool     # `permutations` key of repeat
    if_two_args: bool             # `if` without a false branch drops the key

    def __str__(self) -> str:
        return self.date


VERSIONS: dict[str, HotVersion] = {}


def _add(date: str, name: str | None, fns, conds=frozenset(), **features) -> None:
    defaults = dict(has_conditions=bool(conds), list_join_multiple=date >= "2015-10-15",
                    get_attr_all=date >= "2015-10-15", repeat_permutations=date >= "2017-09-01",
                    if_two_args=date >= "2021-04-16")
    defaults.update(features)
    VERSIONS[date] = HotVersion(date, name, frozenset(fns), frozenset(conds), **defaults)


_add("2013-05-23", None, _V2013)
_add("2014-10-16", None, _V2014)
_add("2015-04-30", None, _V2015_04)
_add("2015-10-15", None, _V2015_10)
_add("2016-04-08", None, _V2016_04)
_add("2016-10-14", "newton", _V2016_10, _COND_2016)
_add("2017-02-24", "ocata", _V2017_02, _COND_2016)
_add("2017-09-01", "pike", _V2017_09, _COND_2017_09)
_add("2018-03-02", "queens", _V2017_09, _COND_2017_09)
_add("2018-08-31", "rocky", _V2017_09, _COND_2017_09)
_add("2021-04-16", "wallaby", _V2017_09, _COND_2017_09)

BY_NAME = {v.name: v for v in VERSIONS.values() if v.name}

#: every function name of any version: a single-key map with one of these keys is a call
ALL_FUNCTIONS: frozenset[str] = frozenset().union(
    *(v.functions | v.condition_functions for v in VERSIONS.values())
)

ALLOWED_NAMES = list(VERSIONS) + list(BY_NAME)


def get_version(value: object) -> HotVersion:
    """The version for a ``heat_template_version`` value: a date (YAML may have parsed it as
    one), a date string or a release name."""
    if isinstance(value, datetime.datetime):
        key = value.date().isoformat()
    elif isinstance(value, datetime.date):
        key = value.isoformat()
    else:
        key = str(value).strip() if value is not None else ""
    if key in VERSIONS:
        return VERSIONS[key]
    if key.lower() in BY_NAME:
        return BY_NAME[key.lower()]
    raise InvalidTemplateVersion(value, ALLOWED_NAMES)

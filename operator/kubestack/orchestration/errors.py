"""Heat-worded validation errors.

Messages follow the wording users know from Heat (and search for); every error carries the
path of the template element at fault (``resources.web.properties.flavor``,
``parameters.key_name``, ``outputs.ip``) which is prefixed to the message, as Heat does.
"""

from __future__ import annotations

from typing import Iterable, Sequence


def format_path(path: Iterable[object]) -> str:
    return ".".join(str(p) for p in path)


class HeatError(Exception):
    """Base class: a template, parameter or environment the engine refuses."""

    #: the error is an object the template names that does not exist (an image, a flavor):
    #: unlike the template's own mistakes it may go away by itself, once the object is made
    missing: bool = False

    def __init__(self, message: str, path: Sequence[object] = ()) -> None:
        self.message = message
        self.path = [str(p) for p in path]
        super().__init__(str(self))

    def not_found(self) -> "HeatError":
        """The same error, marked as naming an object that does not exist (yet)."""
        self.missing = True
        return self

    def __str__(self) -> str:
        if self.path:
            return f"{format_path(self.path)}: {self.message}"
        return self.message

    def at(self, path: Sequence[object]) -> "HeatError":
        """The same error with a path, when it was raised without one."""
        if not self.path:
            self.path = [str(p) for p in path]
            self.args = (str(self),)
        return self


class StackValidationFailed(HeatError):
    pass


class InvalidTemplateVersion(HeatError):
    def __init__(self, given: object, allowed: Sequence[str]) -> None:
        super().__init__(
            f'The template version is invalid: "heat_template_version: {given}". '
            f'"heat_template_version" should be one of: {", ".join(allowed)}'
        )


class ResourceTypeNotFound(HeatError):
    def __init__(self, type_name: str, path: Sequence[object] = ()) -> None:
        self.type_name = type_name
        super().__init__(f"The Resource Type ({type_name}) could not be found.", path)


class UserParameterMissing(HeatError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"The Parameter ({name}) was not provided.")


class UnknownUserParameter(HeatError):
    def __init__(self, name: str, path: Sequence[object] = ()) -> None:
        self.name = name
        super().__init__(f"The Parameter ({name}) was not defined in template.", path)


class InvalidParameter(HeatError):
    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"Parameter '{name}' is invalid: {reason}", ["parameters", name])


class PropertyNotAssigned(HeatError):
    def __init__(self, prop: str, path: Sequence[object]) -> None:
        self.prop = prop
        super().__init__(f"Property {prop} not assigned", path)


class PropertyError(HeatError):
    def __init__(self, message: str, path: Sequence[object]) -> None:
        super().__init__(message, path)

    def __str__(self) -> str:
        return f"Property error: {super().__str__()}"


class UnknownProperty(HeatError):
    def __init__(self, prop: str, path: Sequence[object]) -> None:
        super().__init__(f"Unknown Property {prop}", path)


class InvalidTemplateReference(HeatError):
    def __init__(self, reference: str, referrer: str, path: Sequence[object] = ()) -> None:
        self.reference = reference
        super().__init__(f'The specified reference "{reference}" (in {referrer}) is incorrect.', path)


class InvalidTemplateAttribute(HeatError):
    def __init__(self, resource: str, attribute: str, path: Sequence[object] = ()) -> None:
        super().__init__(f"The Referenced Attribute ({resource} {attribute}) is incorrect.", path)


class CircularDependency(HeatError):
    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__(f"Circular Dependency Found: {' -> '.join(cycle)}")


class FunctionNotSupported(HeatError):
    """A function the template's version does not have (or one kubestack lacks)."""

    def __init__(self, function: str, version: str, path: Sequence[object] = (), detail: str = "") -> None:
        self.function = function
        self.version = version
        msg = detail or (
            f'The function "{function}" is not supported in this version of HOT '
            f"(heat_template_version {version})."
        )
        super().__init__(msg, path)


class InvalidFunctionArgs(HeatError):
    def __init__(self, function: str, reason: str, path: Sequence[object] = ()) -> None:
        self.function = function
        super().__init__(f'Arguments to "{function}" {reason}', path)

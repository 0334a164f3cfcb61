"""``nn.Module``: the base class of layers and models, with PyTorch's semantics.

Attributes that are Parameters, Modules or registered buffers are tracked in ordered dicts, so
traversal (``named_parameters``, ``modules``...), ``state_dict`` keys and ``repr`` come out in
definition order with the same names PyTorch gives them.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Iterator, Mapping

from ....ir import dtypes as D
from ....ir.errors import user_location
from ... import trace_state
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor, device
from ..parameter import Parameter

__all__ = ["Module", "RemovableHandle", "IncompatibleKeys"]

_hook_ids = itertools.count()


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the missing and the unexpected keys."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


IncompatibleKeys = _IncompatibleKeys


class RemovableHandle:
    """Returned by ``register_*_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: dict, extra: tuple = ()) -> None:
        self._hooks = hooks
        self._extra = extra
        self.id = next(_hook_ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)
        for extra in self._extra:
            extra.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class Members(OrderedDict):
    """A module's parameters, buffers, submodules or hooks: an ``OrderedDict`` whose every
    change moves `trace_state.EPOCH`, so compiled code re-checks its guards on module
    structure only after one (`ember.tracer.guards`)."""

    def __setitem__(self, key, value) -> None:
        trace_state.bump()
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        trace_state.bump()
        super().__delitem__(key)

    def clear(self) -> None:
        trace_state.bump()
        super().clear()

    def pop(self, *args):
        trace_state.bump()
        return super().pop(*args)

    def popitem(self, last: bool = True):
        trace_state.bump()
        return super().popitem(last)

    def update(self, *args, **kwargs) -> None:
        trace_state.bump()
        super().update(*args, **kwargs)

    def setdefault(self, key, default=None):
        trace_state.bump()
        return super().setdefault(key, default)

    def move_to_end(self, key, last: bool = True) -> None:
        trace_state.bump()
        super().move_to_end(key, last)

    def __reduce__(self):  # pickles and copies as a plain OrderedDict would, but stays Members
        return (type(self), (list(self.items()),))


MEMBER_STORES = (
    "_parameters", "_buffers", "_modules", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_forward_hooks", "_forward_hooks_with_kwargs",
)  # fmt: skip


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module:
    """Base class for all neural network modules."""

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs) -> None:
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments")
        trace = trace_state.active()
        if trace is not None:  # made inside a compiled function: nothing to guard on it
            trace.note_new(self)
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        for name in MEMBER_STORES:
            object.__setattr__(self, name, Members())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    # ---- calling -----------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        with_kwargs = self._forward_pre_hooks_with_kwargs
        for hook_id, hook in list(self._forward_pre_hooks.items()):
            if hook_id in with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple of "
                            f"(new_args, new_kwargs), but got {result}."
                        )
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        with_kwargs = self._forward_hooks_with_kwargs
        for hook_id, hook in list(self._forward_hooks.items()):
            if hook_id in with_kwargs:
                result = hook(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def _add_hook(self, hooks, kwargs_set, hook, prepend: bool, with_kwargs: bool):
        handle = RemovableHandle(hooks, (kwargs_set,))
        hooks[handle.id] = hook
        if with_kwargs:
            kwargs_set[handle.id] = True
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:  # fmt: skip
        """``hook(module, args)`` runs before ``forward``; a non-None result replaces the
        positional arguments (``with_kwargs=True``: ``hook(module, args, kwargs)`` returning
        ``(args, kwargs)``)."""
        return self._add_hook(self._forward_pre_hooks, self._forward_pre_hooks_with_kwargs,
                              hook, prepend, with_kwargs)  # fmt: skip

    def register_forward_hook(self, hook, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:  # fmt: skip
        """``hook(module, args, output)`` runs after ``forward``; a non-None result replaces
        the output (``with_kwargs=True``: ``hook(module, args, kwargs, output)``)."""
        return self._add_hook(self._forward_hooks, self._forward_hooks_with_kwargs,
                              hook, prepend, with_kwargs)  # fmt: skip

    # ---- attributes --------------------------------------------------------------------

    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value) -> None:
        trace_state.bump()
        trace = trace_state.active()
        if trace is not None:  # inside ember.compile: the compiled program repeats the write
            trace.note_setattr(self, name)
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._discard(name, keep="_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as parameter '{name}' "
                    "(ember.nn.Parameter or None expected)"
                )
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            if "_modules" not in self.__dict__:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._discard(name, keep="_modules")
            self._modules[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as child module '{name}' "
                    "(ember.nn.Module or None expected)"
                )
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as buffer '{name}' "
                    "(ember.Tensor or None expected)"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name: str, keep: str) -> None:
        self.__dict__.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            if store != keep:
                self.__dict__[store].pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __delattr__(self, name: str) -> None:
        trace_state.bump()
        trace = trace_state.active()
        if trace is not None:
            trace.note_setattr(self, name)
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[store]:
                del self.__dict__[store][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = list(super().__dir__())
        keys += list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(keys))

    def _check_name(self, kind: str, name: str, store: str) -> None:
        """PyTorch's checks (and messages) for ``register_*``'s name, in PyTorch's order."""
        if store not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {_typename(name)}")
        if "." in name:
            got = f", got: {name}" if kind == "module" else ""
            raise KeyError(f'{kind} name can\'t contain "."{got}')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if hasattr(self, name) and name not in self.__dict__[store]:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_name("parameter", name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                "(ember.nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                f"created explicitly. To express '{name}' as a function of another Tensor, "
                "compute the value in the forward() method."
            )
        trace_state.bump()
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        self._check_name("buffer", name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                "(ember Tensor or None required)"
            )
        trace_state.bump()
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        self._check_name("module", name, "_modules")
        trace_state.bump()
        self._modules[name] = module

    def register_module(self, name: str, module: Module | None) -> None:
        self.add_module(name, module)

    def get_submodule(self, target: str) -> Module:
        if target == "":
            return self
        module = self
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(module._get_name() + " has no attribute `" + item + "`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return module

    def _get_member(self, target: str, kind: str, ok) -> Tensor:
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        value = getattr(module, name)
        if not ok(module, name, value):
            raise AttributeError("`" + name + "` is not " + kind)
        return value

    def get_parameter(self, target: str) -> Parameter:
        return self._get_member(target, "an nn.Parameter",
                                lambda m, n, v: isinstance(v, Parameter))  # fmt: skip

    def get_buffer(self, target: str) -> Tensor:
        return self._get_member(target, "a buffer", lambda m, n, v: n in m._buffers)

    # ---- traversal ---------------------------------------------------------------------

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]  # fmt: skip
        for module_prefix, module in modules:
            for name, value in module.__dict__[store].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):  # fmt: skip
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):  # fmt: skip
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- state -------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)  # through the method, so a child's override of train() runs
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:  # (without reading .grad, as `Optimizer.zero_grad`)
                p.grad = None
            elif p.grad is not None:
                with no_grad():
                    p.grad.zero_()

    def apply(self, fn) -> Module:
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _apply_tensors(self, fn) -> Module:
        """Replace every parameter's and buffer's data by ``fn(tensor)`` (in place for params)."""
        trace_state.bump()
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    new = fn(p)
                    if new is not p:
                        p._data = new._data
                        if p._grad is not None:
                            p._grad._data = fn(p._grad)._data
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs) -> Module:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(tensor)``: floating point
        parameters and buffers are cast; eager tensors live on the cpu."""
        dtype = kwargs.get("dtype")
        devices = [kwargs["device"]] if kwargs.get("device") is not None else []
        if isinstance(kwargs.get("tensor"), Tensor):
            dtype = kwargs["tensor"].dtype
        for a in args:
            if isinstance(a, D.DType):
                dtype = a
            elif isinstance(a, Tensor):
                dtype = a.dtype
            elif isinstance(a, str | device | int):
                devices.append(a)
            elif a is not None:
                raise TypeError(f"to() received an invalid argument of type {_typename(a)}")
        for d in devices:
            dev = device(d) if not isinstance(d, int) else device("cuda", d)
            if dev.type != "cpu":
                raise RuntimeError(f"to: eager tensors live on the cpu; cannot move to {d}")
        if dtype is None:
            return self
        if not dtype.is_floating_point:
            raise TypeError(
                "nn.Module.to only accepts floating point or complex dtypes, but got desired "
                f"dtype={dtype}"
            )
        return self._apply_tensors(lambda t: t.to(dtype) if t.is_floating_point() else t)

    def float(self) -> Module:
        return self.to(D.float32)

    def double(self) -> Module:
        return self.to(D.float64)

    def half(self) -> Module:
        return self.to(D.float16)

    def bfloat16(self) -> Module:
        return self.to(D.bfloat16)

    def cpu(self) -> Module:
        return self

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)  # fmt: skip
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and persistent buffers from ``state_dict`` (PyTorch's algorithm, so
        the missing/unexpected keys come out in PyTorch's order and its error text)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing_keys: list[str] = []
        unexpected_keys: list[str] = []
        error_msgs: list[str] = []
        state_dict = OrderedDict(state_dict)
        # every module validates its entries and queues its writes; they run only when nothing
        # is wrong, so a failed load leaves the model as it was (PyTorch writes some first)
        writes: list = []
        metadata = {"assign_to_params_buffers": assign, "pending_writes": writes}

        def load(module, local_state_dict, prefix=""):
            module._load_from_state_dict(local_state_dict, prefix, metadata, True,
                                         missing_keys, unexpected_keys, error_msgs)  # fmt: skip
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    child_state_dict = {k: v for k, v in local_state_dict.items()
                                        if k.startswith(child_prefix)}  # fmt: skip
                    load(child, child_state_dict, child_prefix)

        load(self, state_dict)
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))  # fmt: skip
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))  # fmt: skip
        if error_msgs:
            loc = user_location()
            raise RuntimeError(
                "Error(s) in loading state_dict for {}:\n\t{}".format(
                    type(self).__name__, "\n\t".join(error_msgs)
                )
                + (f"\n(at {loc})" if loc is not None else "")
            )
        with no_grad():
            for write in writes:
                write()
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        """Load this module's own parameters and persistent buffers (not its children's)."""
        local_state = {k: v for k, v in itertools.chain(
            self._parameters.items(),
            ((n, b) for n, b in self._buffers.items() if n not in self._non_persistent_buffers_set),
        ) if v is not None}  # fmt: skip
        assign = local_metadata.get("assign_to_params_buffers", False)
        for name, param in local_state.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            input_param = state_dict[key]
            if not isinstance(input_param, Tensor):
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected ember.Tensor or '
                    f"Tensor-like object from checkpoint but received {type(input_param)}"
                )
                continue
            # backward compatibility: a 1-element 1-d checkpoint value for a 0-d parameter
            if param.ndim == 0 and input_param.ndim == 1 and input_param.shape[0] == 1:
                input_param = input_param[0]
            if tuple(input_param.shape) != tuple(param.shape):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {input_param.shape} "
                    f"from checkpoint, the shape in current model is {param.shape}."
                )
                continue
            write = self._state_write(name, param, input_param, assign)
            pending = local_metadata.get("pending_writes")
            if pending is not None:
                pending.append(write)
                continue
            try:
                with no_grad():
                    write()
            except Exception as ex:  # noqa: BLE001 (reported like PyTorch)
                error_msgs.append(
                    f'While copying the parameter named "{key}", whose dimensions in the model '
                    f"are {param.shape} and whose dimensions in the checkpoint are "
                    f"{input_param.shape}, an exception occurred : {ex.args}."
                )
        if strict:
            for key in state_dict:
                if key.startswith(prefix):
                    input_name = key[len(prefix) :].split(".", 1)
                    if len(input_name) > 1:
                        if input_name[0] not in self._modules:
                            unexpected_keys.append(key)
                    elif input_name[0] not in local_state:
                        unexpected_keys.append(key)

    def _state_write(self, name: str, param, input_param, assign: bool):
        """The write of one checked state-dict entry, to run once the whole dict is checked."""

        def write() -> None:
            value = input_param
            if assign:
                if isinstance(param, Parameter) and not isinstance(value, Parameter):
                    value = Parameter(value, param.requires_grad)
                elif isinstance(param, Parameter):
                    value.requires_grad_(param.requires_grad)
                setattr(self, name, value)
            else:
                param.copy_(value)

        return write

    # ---- printing ----------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for key, module in self._modules.items():
            lines.append("(" + key + "): " + _addindent(repr(module), 2))
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


def _typename(obj) -> str:
    """The type's name as PyTorch's messages print it (``ember.Tensor`` for tensors)."""
    if isinstance(obj, Parameter):
        return "ember.nn.Parameter"
    if isinstance(obj, Tensor):
        return "ember.Tensor"
    return type(obj).__name__

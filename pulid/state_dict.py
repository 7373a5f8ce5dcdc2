"""One reader for every weights file the library opens: PuLID checkpoints, EVA-CLIP, the facexlib nets.

Torch pickles are only ever read with `weights_only=True`: a well-formed file that needs code to load is
refused; a cut or garbled one is "truncated or corrupt" (its pickles are checked for completeness first),
so a damaged download never reads as an attack. Each caller words the errors for its own kind of file:
`describe(problem)` gets the problem as a phrase ("is empty (0 bytes): ...", "was refused: ...") and
returns the whole message.
"""
import os
import pickle
import pickletools
import struct

import torch

from .errors import PulidFormatError

ZIP_MAGIC = b"PK\x03\x04"
LEGACY_PICKLES = 5
"""torch's legacy format: magic number, protocol version, system info, the saved object, storage keys."""


def read(path, describe):
    """What a .safetensors file or a torch pickle at `path` holds (a state dict, possibly nested), on the CPU.

    The caller checks that the file exists (its not-found message names where the file belongs); every
    other failure is a PulidFormatError worded by `describe`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise PulidFormatError(describe("is a folder, not a model file."))
    size = os.path.getsize(path)
    if size == 0:
        raise PulidFormatError(describe("is empty (0 bytes): the download probably failed; download it again."))
    with open(path, "rb") as f:
        head = f.read(9)
    if size < len(ZIP_MAGIC) and ZIP_MAGIC.startswith(head):
        raise PulidFormatError(describe(f"is truncated or corrupt (only {size} byte(s)); download it again."))
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return _read_torch(path, describe, zipped=head[:2] == b"PK")
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < size:
        return _read_safetensors(path, describe)
    if len(head) == 9 and head[8:9] == b"{":
        raise PulidFormatError(describe("is truncated or corrupt (safetensors header cut off); download it again."))
    raise PulidFormatError(describe("is neither a .safetensors file nor a PyTorch checkpoint."))


def _read_safetensors(path, describe):
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for cut-off or corrupt files
        raise PulidFormatError(describe(f"is truncated or corrupt ({exc}); download it again.")) from exc


def _read_torch(path, describe, zipped):
    if not zipped:
        _check_pickles(path, describe)
    try:
        if path.endswith(".safetensors"):
            # A torch pickle misnamed .safetensors: pass a file object, since newer torch.load hands such
            # paths to safetensors; mmap needs a path, so this rare case reads the file into memory.
            with open(path, "rb") as f:
                return torch.load(f, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
    except pickle.UnpicklingError as exc:
        if _names_code(exc):
            raise PulidFormatError(describe(
                "was refused: loading it would run code stored in the file, which is never done here. "
                "Use the official file or a .safetensors version.")) from None
        raise PulidFormatError(describe(f"is truncated or corrupt ({_reason(exc)}); download it again.")) \
            from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, TypeError, struct.error) as exc:
        # A cut legacy (non-zip) pickle fails inside torch's reader with whatever it hit first.
        raise PulidFormatError(describe(f"is truncated or corrupt ({_reason(exc)}); download it again.")) \
            from None


def _check_pickles(path, describe):
    """Raise "truncated or corrupt" unless the pickles at the start of a legacy (non-zip) file are complete.

    The weights-only loader judges globals as it meets them, so a pickle cut in the middle of a global's
    name ("torch._ut") is refused as code. Walking the opcodes first (pickletools builds and runs nothing)
    leaves "refused" to well-formed pickles that name code. A legacy torch file is LEGACY_PICKLES pickles
    and then raw storage bytes (torch checks those itself); a plain pickle file is one pickle.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        stream = _Capped(f, size)
        for index in range(LEGACY_PICKLES):
            start = f.tell()
            if start == size:
                return
            try:
                for _ in pickletools.genops(stream):  # stops after STOP; raises on a cut or unknown opcode
                    pass
            except ValueError as exc:
                raise PulidFormatError(describe(
                    f"is truncated or corrupt (pickle {index + 1} from byte {start}: {exc}); download it again."
                )) from None


class _Capped:
    """A file whose reads never ask for more than is left, so a length field claiming terabytes in a damaged
    pickle is a short read (ValueError in pickletools), not a huge allocation."""

    def __init__(self, f, size):
        self.f, self.size = f, size

    def read(self, n=-1):
        left = self.size - self.f.tell()
        return self.f.read(left if n < 0 else min(n, left))

    def readline(self):
        return self.f.readline()

    def tell(self):
        return self.f.tell()


def _names_code(exc):
    """Whether a weights-only failure is an unsupported global (code the file would run): every weights-only
    failure mentions "weights only", only this kind names a GLOBAL; the rest is a damaged pickle."""
    return "unsupported global" in str(exc).lower()


def _reason(exc):
    """The useful line of an error (torch's weights-only messages wrap it in advice that does not apply)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    advice = ("weights only load failed", "check the documentation", "weightsunpickler error", "please file an issue")
    useful = [line for line in lines if not line.lower().startswith(advice)]
    return (useful or lines or [type(exc).__name__])[0][:200] or type(exc).__name__

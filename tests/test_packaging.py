"""Packaging metadata that the code depends on: the torch floor."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: torch APIs the package calls, with the release that introduced the form used. Add a line when
#: the code starts using a newer API, and the floor test keeps pyproject.toml honest.
TORCH_APIS = {
    'torch.is_autocast_enabled("': (2, 4),  # the device-type argument
    "torch.compiler.is_compiling(": (2, 3),
    "_compiled_call_impl": (2, 2),  # nn.Module.compile's hook
    "scaled_dot_product_attention(q, k, v, scale=": (2, 1),
    "weights_only=True": (1, 13),
}


def _torch_floor() -> tuple:
    # A regular expression, not tomllib: that is Python 3.11+, and the package supports 3.10.
    found = re.findall(r'^\s*"torch\s*>=\s*(\d+)\.(\d+)(?:\.\d+)?"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert len(found) == 1, f"expected one plain 'torch>=X.Y' requirement in pyproject.toml, found {found}"
    return int(found[0][0]), int(found[0][1])


def test_the_torch_floor_covers_the_apis_the_code_calls():
    source = "\n".join(path.read_text() for path in (ROOT / "skefh").rglob("*.py"))
    used = {api: version for api, version in TORCH_APIS.items() if api in source}
    assert 'torch.is_autocast_enabled("' in used  # the table still matches the code
    newest = max(used.values())
    assert _torch_floor() >= newest, f"pyproject.toml's torch floor is below {newest}, needed by {used}"

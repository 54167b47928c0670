import pytest

from kubestack.scheduler.extra_specs_ops import match

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("value,req,ok", [
    ("x86_64", "x86_64", True), ("x86_64", "aarch64", False),
    (16, "= 8", True), (4, "= 8", False), ("4", ">= 4", True), ("5", "<= 4", False),
    (4, "== 4", True), (4, "!= 4", False), ("abc", "= 1", False),
    ("QEMU", "s== QEMU", True), ("qemu", "s== QEMU", False), ("b", "s> a", True),
    ("b", "s< a", False), ("a", "s!= b", True), ("a", "s<= a", True), ("a", "s>= b", False),
    ("avx2 sse4", "<in> avx2", True), ("sse4", "<in> avx2", False),
    (["avx2", "sse4", "aes"], "<all-in> avx2 aes", True), (["avx2"], "<all-in> avx2 aes", False),
    ("v2", "<or> v1 <or> v2 <or> v3", True), ("v4", "<or> v1 <or> v2", False),
    (None, "= 1", False), (None, "x", False), (None, "<or> a <or> b", False),
    (True, "True", True), (4.0, "4", True),
])
def test_match(value, req, ok):
    assert match(value, req) is ok

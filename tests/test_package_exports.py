"""``import svac`` is cheap and gives the documented entry points (``svac.SVAC`` ...)."""

import subprocess
import sys

import pytest


def test_import_svac_imports_neither_torch_nor_transformers():
    code = ("import sys, svac; heavy = [m for m in ('torch', 'transformers', 'sam2') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_the_defining_modules_objects():
    import svac
    import svac.config
    import svac.loading
    import svac.model
    import svac.outputs

    assert svac.SVAC is svac.model.SVAC
    assert svac.SVACConfig is svac.config.SVACConfig
    assert svac.load_model is svac.loading.load_model
    assert svac.SegmentationResult is svac.outputs.SegmentationResult
    assert set(svac.__all__) <= set(dir(svac))


def test_an_unknown_name_is_an_attribute_error():
    import svac

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        svac.Nope  # noqa: B018

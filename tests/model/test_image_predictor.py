"""The single-image predictor in napari coordinates, for any 2D image dtype."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2 import ImagePredictor
from napari_sam2.errors import PromptError
from napari_sam2.model.testing import random_model


@pytest.fixture(scope="module")
def predictor():
    return ImagePredictor(random_model())


def disc_image(shape=(80, 120)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (((yy - 40) ** 2 + (xx - 50) ** 2) < 15**2) * 200 + 20


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_any_dtype_and_channels_give_masks_at_image_resolution(predictor, dtype):
    img = disc_image().astype(dtype)
    outs = []
    for image in (img, np.stack([img] * 3, axis=-1)):  # grey, and the same grey as RGB
        predictor.set_image(image)
        out = predictor.predict(np.array([[40, 50]]), np.array([1]), return_logits=True)
        assert out.masks.shape == (3, 80, 120) and out.masks.dtype == np.float32
        assert out.iou.shape == (3,) and ((out.iou >= 0) & (out.iou <= 1)).all()  # sigmoid IoU head
        assert out.low_res_logits.shape == (3, 64, 64) and np.abs(out.low_res_logits).max() <= 32
        assert np.isfinite(out.masks).all()
        outs.append(out)
    grey, rgb = outs
    np.testing.assert_array_equal(grey.masks, rgb.masks)  # grey is repeated to three channels
    np.testing.assert_array_equal(grey.iou, rgb.iou)
    masks = predictor.predict(np.array([[40, 50]]), np.array([1])).masks
    assert masks.dtype == bool
    np.testing.assert_array_equal(masks, rgb.masks > 0)  # the masks are the logits above 0


def test_box_single_mask_and_mask_input_round_trip(predictor):
    predictor.set_image(disc_image().astype(np.uint8))
    first = predictor.predict(box=np.array([20, 30, 60, 70]), multimask=False, return_logits=True)
    assert first.masks.shape == (1, 80, 120) and first.iou.shape == (1,) and first.low_res_logits.shape == (1, 64, 64)
    assert 0 <= first.iou[0] <= 1
    # deterministic, and the box is what the mask depends on
    again_box = predictor.predict(box=np.array([20, 30, 60, 70]), multimask=False, return_logits=True)
    np.testing.assert_array_equal(first.masks, again_box.masks)
    other_box = predictor.predict(box=np.array([5, 80, 30, 115]), multimask=False, return_logits=True)
    assert not np.allclose(first.masks, other_box.masks)
    # a previous low-res result as mask_input changes the prediction of the same click
    click = dict(points=np.array([[40, 50]]), labels=np.array([1]), multimask=False, return_logits=True)
    plain = predictor.predict(**click)
    again = predictor.predict(**click, mask_input=first.low_res_logits[0])
    assert again.masks.dtype == np.float32 and again.masks.shape == (1, 80, 120)
    assert np.isfinite(again.masks).all()
    assert not np.allclose(again.masks, plain.masks)
    np.testing.assert_array_equal(predictor.predict(**click, mask_input=first.low_res_logits[0]).masks, again.masks)


def test_uint16_and_its_8_bit_version_agree(predictor):
    img = disc_image().astype(np.uint16) * 100
    predictor.set_image(img)
    a = predictor.predict(np.array([[40, 50]]), np.array([1]), return_logits=True)
    lo, hi = np.percentile(img, [0.5, 99.5])
    predictor.set_image(np.clip(np.rint((img - lo) * 255.0 / (hi - lo)), 0, 255).astype(np.uint8))
    b = predictor.predict(np.array([[40, 50]]), np.array([1]), return_logits=True)
    np.testing.assert_allclose(a.masks, b.masks, atol=1e-4)


def test_errors(predictor):
    fresh = ImagePredictor(predictor.model)
    with pytest.raises(PromptError, match="set_image"):
        fresh.predict(np.array([[1, 1]]), np.array([1]))
    predictor.set_image(disc_image().astype(np.uint8))
    with pytest.raises(PromptError, match="at least one"):
        predictor.predict()
    with pytest.raises(PromptError, match="labels"):
        predictor.predict(np.array([[1, 1], [2, 2]]), np.array([1]))

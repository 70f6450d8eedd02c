"""Specification of `core.detector.Detector` on real weights and real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from core.detector import Detector, ImageDetections, resolve_device, resolve_half
from core.features import divergence_maps
from core.images import load_image
from strategies.spatial import divergence_map

IMGSZ, SCORE_CONF = 320, 0.05


@pytest.fixture(scope="module")
def images(bccd_images: list[Path], coco_images: list[Path]) -> list[np.ndarray]:
    return [load_image(p) for p in [*coco_images, *bccd_images]]


@pytest.fixture(scope="module")
def results(detector: Detector, images: list[np.ndarray]) -> list[ImageDetections]:
    return detector.detect(images, divergence_radius=1)


def test_the_class_probability_vector_max_is_the_reported_confidence(results, detector) -> None:
    assert sum(r.num_boxes for r in results) > 20
    for r in results:
        assert r.probs.shape == (r.num_boxes, detector.num_classes) == (r.num_boxes, 80)
        np.testing.assert_array_equal(r.probs.max(axis=1), r.conf)
        np.testing.assert_array_equal(r.probs.argmax(axis=1), r.cls)
        assert ((r.probs >= 0) & (r.probs <= 1)).all()


def test_boxes_equal_ultralytics_predict_on_the_same_image_and_settings(results, images, reference) -> None:
    for image, r in zip(images, results, strict=True):
        ref = reference.predict(image, imgsz=IMGSZ, conf=SCORE_CONF, iou=0.7, max_det=300, verbose=False)[0].boxes
        assert r.num_boxes == len(ref)
        np.testing.assert_allclose(r.xyxy, ref.xyxy.numpy(), atol=1e-3, rtol=0)
        np.testing.assert_array_equal(r.cls, ref.cls.numpy().astype(int))
        np.testing.assert_allclose(r.conf, ref.conf.numpy(), atol=1e-5)


def test_a_frame_gives_the_same_result_whatever_else_is_in_its_batch(detector, images, results) -> None:
    alone = detector.detect([images[0]], divergence_radius=1)[0]
    assert alone.num_boxes == results[0].num_boxes
    np.testing.assert_allclose(alone.xyxy, results[0].xyxy, atol=1e-3)
    np.testing.assert_allclose(alone.embeddings, results[0].embeddings, atol=1e-4)
    np.testing.assert_allclose(alone.divergence, results[0].divergence, atol=1e-5)


def test_embeddings_are_deterministic(detector, images, results) -> None:
    again = detector.detect(images, divergence_radius=1)
    for a, b in zip(results, again, strict=True):
        np.testing.assert_array_equal(a.embeddings, b.embeddings)
        np.testing.assert_array_equal(a.image_embedding, b.image_embedding)
        np.testing.assert_array_equal(a.xyxy, b.xyxy)


def test_embeddings_are_unit_vectors_that_differ_between_objects_and_images(results) -> None:
    busy = max(results, key=lambda r: r.num_boxes)
    assert busy.embeddings.shape == (busy.num_boxes, 64 + 128 + 256)  # P3 + P4 + P5 channels of YOLO11n
    np.testing.assert_allclose(np.linalg.norm(busy.embeddings, axis=1), 1.0, atol=1e-5)
    cosine = busy.embeddings @ busy.embeddings.T
    iou = box_iou(torch.from_numpy(busy.xyxy), torch.from_numpy(busy.xyxy)).numpy()
    others = ~np.eye(len(cosine), dtype=bool)
    disjoint, same_object = (iou == 0) & others, (iou > 0.5) & others
    same_class = busy.cls[:, None] == busy.cls[None, :]
    assert disjoint.sum() > 100 and same_object.sum() > 10
    assert cosine[disjoint].max() < 0.98  # different objects never share a vector
    assert cosine[same_object].mean() > cosine[disjoint].mean() + 0.2  # boxes on one object agree
    assert cosine[disjoint & same_class].mean() > cosine[disjoint & ~same_class].mean()  # a kind looks alike

    image_embeddings = np.stack([r.image_embedding for r in results])
    assert image_embeddings.shape == (len(results), 256)  # global pool of P5
    np.testing.assert_allclose(np.linalg.norm(image_embeddings, axis=1), 1.0, atol=1e-5)
    image_cosine = image_embeddings @ image_embeddings.T
    assert image_cosine[~np.eye(len(results), dtype=bool)].max() < 0.999


def test_an_image_without_detections_is_a_valid_result(detector, blank_image) -> None:
    r = detector.detect([blank_image], divergence_radius=1, tta_flip=True)[0]
    assert r.num_boxes == 0 and (r.width, r.height) == (640, 480)
    assert r.xyxy.shape == (0, 4) and r.probs.shape == (0, 80) and r.embeddings.shape == (0, 448)
    assert r.image_embedding.shape == (256,) and np.isfinite(r.image_embedding).all()
    assert r.divergence is not None and r.divergence.shape == (30, 40)
    assert r.flip_xyxy is not None and r.flip_xyxy.shape == (0, 4) and r.flip_probs.shape == (0, 80)


def test_the_divergence_map_is_the_spatial_score_of_the_dense_class_maps_cropped_to_the_image(
    detector, images, results
) -> None:
    image, r = images[4], results[4]  # BCCD 640x480 -> 320x240 letterboxed to 320x256, 8 grey rows above and below
    x = detector._letterbox([image])
    assert tuple(x.shape[2:]) == (256, 320)
    raw, _ = detector._forward(x)
    scores = raw[0, 4:].numpy()
    maps, start = [], 0
    for stride in (8, 16, 32):
        h, w = 256 // stride, 320 // stride
        maps.append(scores[:, start : start + h * w].reshape(80, h, w))
        start += h * w
    full = divergence_map(maps, radius=1)
    assert full.shape == (32, 40) and r.divergence.shape == (30, 40)  # the padding rows 0 and 31 are cut
    np.testing.assert_allclose(r.divergence, full[1:31], atol=1e-5, rtol=1e-4)
    assert (r.divergence >= 0).all() and r.divergence.max() > 0


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_the_batched_divergence_port_equals_the_reference_of_strategies_spatial(radius: int) -> None:
    rng = np.random.default_rng(radius)
    levels = [(3, 16, 20), (3, 8, 10), (3, 4, 5)]  # (C, h, w) of strides 8, 16, 32
    batch = [[1 / (1 + np.exp(-rng.normal(-4, 3, size=s))) for s in levels] for _ in range(2)]
    batch.append([np.full(s, 0.3) for s in levels])  # agreement everywhere: zero
    ported = divergence_maps([torch.tensor(np.stack([b[k] for b in batch])) for k in range(3)], radius).numpy()
    for image, maps in zip(ported, batch, strict=True):
        np.testing.assert_allclose(image, divergence_map(maps, radius), atol=2e-5, rtol=1e-4)
    assert np.abs(ported[2]).max() < 1e-5


def test_a_low_threshold_finds_every_box_of_the_predict_threshold(detector, images) -> None:
    low = detector.detect(images[:4], conf=0.05)
    high = detector.detect(images[:4], conf=0.25)
    for lo, hi in zip(low, high, strict=True):
        kept = lo.conf > 0.25
        assert hi.num_boxes == kept.sum()
        np.testing.assert_allclose(hi.xyxy, lo.xyxy[kept], atol=1e-4)
    assert sum(r.num_boxes for r in low) > sum(r.num_boxes for r in high)


def test_the_flipped_view_is_the_mirrored_image_mapped_back(detector, bccd_images) -> None:
    image = load_image(bccd_images[0])
    r = detector.detect([image], tta_flip=True)[0]
    mirrored = detector.detect([np.ascontiguousarray(image[:, ::-1])])[0]
    expected = mirrored.xyxy.copy()
    expected[:, [0, 2]] = image.shape[1] - mirrored.xyxy[:, [2, 0]]
    assert r.flip_xyxy.shape == expected.shape and len(expected) > 0
    np.testing.assert_allclose(r.flip_xyxy, expected, atol=1e-3)
    np.testing.assert_allclose(r.flip_probs, mirrored.probs, atol=1e-5)
    np.testing.assert_array_equal(r.flip_probs.max(axis=1), r.flip_conf)


def test_device_and_precision_follow_the_hardware() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_half("auto", torch.device("cpu")) is False
    assert resolve_half("auto", torch.device("cuda:0")) is True
    assert resolve_half(False, torch.device("cuda:0")) is False


def test_settings_come_from_params(params, coco_weights) -> None:
    d = Detector.from_params(params, coco_weights)
    assert d.conf == params["detector"]["conf_predict"] and d.batch == params["detector"]["batch"]
    assert d.imgsz == [params["model"]["imgsz"]] * 2 and d.names[0] == "person"


def test_another_checkpoint_brings_its_own_classes(shared: Path, bccd_images) -> None:
    ball = Detector(shared / "weights" / "yolov9t-ball.pt", imgsz=IMGSZ, conf=0.01)
    assert ball.names == ("ball",)
    r = ball.detect([load_image(bccd_images[0])], divergence_radius=1)[0]
    assert r.probs.shape == (r.num_boxes, 1) and r.embeddings.shape[0] == r.num_boxes
    np.testing.assert_array_equal(r.probs[:, 0], r.conf)


def test_a_loaded_model_can_be_given_and_is_left_as_it_was(reference, images) -> None:
    from_module = Detector(reference.model, imgsz=IMGSZ, conf=SCORE_CONF)
    r = from_module.detect(images[:1])[0]
    assert r.num_boxes > 0 and not reference.model.is_fused()


def test_missing_weights_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        Detector(tmp_path / "nope.pt")


def test_images_must_be_bgr_uint8(detector) -> None:
    with pytest.raises(ValueError, match="uint8"):
        detector.detect([np.zeros((10, 10), dtype=np.uint8)])
    assert detector.detect([]) == []


def test_an_openvino_export_predicts_like_ultralytics_without_features(shared: Path, coco_images) -> None:
    pytest.importorskip("openvino")
    from ultralytics import YOLO

    weights = shared / "weights" / "yolo11n_int8_openvino_model"
    exported = Detector(weights, imgsz=IMGSZ, conf=SCORE_CONF)
    assert exported.imgsz == [640, 640]  # a static export keeps its own input size
    image = load_image(coco_images[0])
    r = exported.detect([image], divergence_radius=1)[0]
    ref = YOLO(str(weights), task="detect").predict(image, conf=SCORE_CONF, verbose=False)[0].boxes
    np.testing.assert_allclose(r.xyxy, ref.xyxy.numpy(), atol=1e-3)
    np.testing.assert_array_equal(r.probs.max(axis=1), r.conf)
    assert r.embeddings.shape == (r.num_boxes, 0) and r.image_embedding.shape == (0,)
    assert r.divergence is not None and r.divergence.shape == (54, 80)  # 640x426 on the stride-8 grid


def test_images_of_different_sizes_with_one_letterboxed_shape_share_a_forward_pass(detector, images) -> None:
    # 426 x 640 and 424 x 640 both letterbox to 224 x 320 at imgsz 320 (213 and 212 rows, padded to the stride);
    # the portrait 640 x 426 does not
    frames = [images[0], np.ascontiguousarray(images[0][:424]), np.ascontiguousarray(images[0].transpose(1, 0, 2))]
    assert [f.shape[:2] for f in frames] == [(426, 640), (424, 640), (640, 426)]
    passes = []
    hook = detector.model.register_forward_hook(lambda module, args, out: passes.append(tuple(args[0].shape)))
    try:
        together = detector.detect(frames, divergence_radius={"radius": 9, "region": 30, "units": "pixels"})
    finally:
        hook.remove()
    assert sorted(passes) == [(1, 3, 320, 224), (2, 3, 224, 320)]
    for frame, r in zip(frames, together, strict=True):
        alone = detector.detect([frame], divergence_radius={"radius": 9, "region": 30, "units": "pixels"})[0]
        assert (r.width, r.height) == (frame.shape[1], frame.shape[0]) and alone.num_boxes == r.num_boxes
        np.testing.assert_allclose(alone.xyxy, r.xyxy, atol=1e-3)
        np.testing.assert_allclose(alone.divergence, r.divergence, atol=1e-5)
        np.testing.assert_allclose(alone.image_embedding, r.image_embedding, atol=1e-5)

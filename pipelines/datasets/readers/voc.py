"""Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/`` + ``ImageSets/Main/{train,val,test}.txt``.

The layouts people have are all read: ``Annotations/`` + ``JPEGImages/`` (the original),
``annotations/`` + ``images/``, the XML files beside their images in one folder, or explicit
``annotations:`` / ``images:`` folders in the dataset's settings. Without ``ImageSets`` every frame
is ``train`` (the import stage then applies ``dataset.auto_split``).

Coordinates are taken as written (VOC's 1-based pixels); the border tolerance of the
manifest absorbs the off-by-one, as ultralytics' own VOC converter does.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree  # keeps line numbers, so errors name the line

from ..errors import DatasetError
from ..formats import Source, register_format
from ..manifest import ManifestBuilder, SourceBox

ANNOTATION_DIRS = ("Annotations", "annotations", "Annotation", "labels", "xml")
IMAGE_DIRS = ("JPEGImages", "images", "Images", "JPEGImages_all", "img")


def voc_folders(root: Path, annotations: Path | None = None, images: Path | None = None) -> tuple[Path, Path]:
    """(annotation folder, image folder) of a VOC dataset in any of the common layouts."""
    ann_dir = annotations or next((root / d for d in ANNOTATION_DIRS if (root / d).is_dir()), None)
    if ann_dir is None and any(root.glob("*.xml")):
        ann_dir = root  # XML files beside their images
    if ann_dir is None or not ann_dir.is_dir():
        raise DatasetError(
            root,
            f"not a Pascal VOC folder: no {' / '.join(ANNOTATION_DIRS)} folder and no *.xml "
            "(or set `annotations:` in the dataset's settings)",
        )
    img_dir = images or next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), ann_dir)
    return ann_dir, img_dir


def read_voc(
    root: Path, builder: ManifestBuilder, dataset: str, annotations: Path | None = None, images: Path | None = None
) -> None:
    ann_dir, img_dir = voc_folders(root, annotations, images)
    split_of = _splits(root / "ImageSets" / "Main")
    for xml_path in sorted(ann_dir.glob("*.xml")):
        tree = _parse(xml_path)
        filename = tree.findtext("filename") or f"{xml_path.stem}.jpg"
        declared = None
        size = tree.find("size")
        if size is not None and size.findtext("width") and size.findtext("height"):
            declared = (int(float(size.findtext("width"))), int(float(size.findtext("height"))))
        builder.add_frame(
            f"{dataset}/{xml_path.stem}",
            img_dir / filename,
            [_box(obj, xml_path) for obj in tree.iter("object")],
            split=split_of.get(xml_path.stem, "train"),
            size=declared,
            listed_from_folder=False,
            where=(xml_path, tree.find("filename").sourceline if tree.find("filename") is not None else None),
        )


def _parse(xml_path: Path) -> etree._Element:
    try:
        return etree.parse(str(xml_path)).getroot()
    except etree.XMLSyntaxError as e:
        raise DatasetError(xml_path, f"invalid XML ({e.msg})", e.lineno) from e


def _box(obj: etree._Element, xml_path: Path) -> SourceBox:
    name = (obj.findtext("name") or "").strip()
    bb = obj.find("bndbox")
    if bb is None:
        raise DatasetError(xml_path, f"object {name!r} has no <bndbox>", obj.sourceline)
    try:
        x1, y1, x2, y2 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
    except (TypeError, ValueError) as e:
        raise DatasetError(
            xml_path, f"object {name!r}: <bndbox> needs numeric xmin, ymin, xmax, ymax", bb.sourceline
        ) from e
    return SourceBox(x1, y1, x2, y2, name, (str(xml_path), obj.sourceline))


def _splits(main: Path) -> dict[str, str]:
    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        f = main / f"{split}.txt"
        if f.exists():
            for stem in f.read_text().split():
                split_of[stem] = split
    return split_of


@register_format("voc")
def read_voc_source(source: Source) -> None:
    read_voc(
        source.path("root"),
        source.builder,
        source.name,
        source.optional_path("annotations"),
        source.optional_path("images"),
    )

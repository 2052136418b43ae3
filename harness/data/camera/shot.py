"""Sampling one shot: light, lens, exposure triangle and the EXIF tags a camera would record.

The light (a lighting condition with its level in EV100 and colour temperature) is drawn
first, informed by how bright the scene content is; the exposure program then picks
aperture, shutter time and ISO so that ``log2(N^2 / t) = EV100 - bias + log2(ISO / 100)``,
raising ISO when the shutter time passes the hand-held limit ``1 / (35 mm focal length)``, and
quantises them to the third-stop values cameras offer. A hand-held camera shakes (an angular
velocity drawn per shot; none on a tripod), which the renderer turns into motion blur of
``angular velocity x exposure time x focal length``. What is left of the exposure error
after quantisation (or a photographer's manual choice) is kept and brightens or darkens the
picture. Distributions of the categorical tags follow their typical frequencies in photo
collections (pattern metering and program mode dominate, flash mostly in dim light).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from harness.data.camera.database import Camera, Lens

__all__ = ["Lighting", "Shot", "LIGHTINGS", "FNUMBERS", "SHUTTER_TIMES", "SHAKE_RAD_S", "sample_shot"]


@dataclass(frozen=True)
class Lighting:
    name: str
    ev100: tuple[float, float]  # range of the light level
    kelvin: tuple[float, float]
    preset: tuple[str, ...]  # white-balance preset names that match it, best first


LIGHTINGS = (
    Lighting("sun", (13.0, 15.0), (5000, 5800), ("Daylight", "Direct Sunlight", "Fine Weather")),
    Lighting("overcast", (11.0, 13.0), (6000, 7000), ("Cloudy",)),
    Lighting("shade", (9.5, 12.0), (7000, 8500), ("Shade",)),
    Lighting("fluorescent", (6.0, 8.0), (3800, 4500), ("Cool White Fluorescent", "Fluorescent", "White Fluorescent")),
    Lighting("tungsten", (4.5, 7.5), (2700, 3300), ("Tungsten", "Incandescent")),
    Lighting("night", (1.5, 4.5), (2200, 3000), ("Tungsten", "Incandescent")),
)
_LIGHTING_P = np.array([0.32, 0.22, 0.12, 0.12, 0.14, 0.08])
FLASH_KELVIN = 5500.0

#: Third-stop f-numbers as cameras record them.
FNUMBERS = tuple(Fraction(v).limit_denominator(10) for v in (
    1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.5, 2.8, 3.2, 3.5, 4.0, 4.5, 5.0, 5.6, 6.3, 7.1, 8.0, 9.0, 10.0,
    11.0, 13.0, 14.0, 16.0, 18.0, 20.0, 22.0, 25.0, 29.0, 32.0))
#: Third-stop shutter times, 1/8000 s to 30 s.
SHUTTER_TIMES = tuple(sorted(
    [Fraction(1, d) for d in (8000, 6400, 5000, 4000, 3200, 2500, 2000, 1600, 1250, 1000, 800, 640, 500, 400, 320,
                              250, 200, 160, 125, 100, 80, 60, 50, 40, 30, 25, 20, 15, 13, 10, 8, 6, 5, 4)]
    + [Fraction(v).limit_denominator(10) for v in (0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.3, 1.6, 2, 2.5, 3.2, 4, 5, 6, 8,
                                                   10, 13, 15, 20, 25, 30)]))
_BIASES = (Fraction(-1), Fraction(-2, 3), Fraction(-1, 3), Fraction(0), Fraction(1, 3), Fraction(2, 3), Fraction(1))
_BIAS_P = np.array([0.02, 0.04, 0.08, 0.72, 0.08, 0.04, 0.02])
# EXIF ExposureProgram: 1 manual, 2 program, 3 aperture priority, 4 shutter priority, 7 portrait, 8 landscape.
_PROGRAMS, _PROGRAM_P = (2, 3, 1, 4, 7, 8), np.array([0.52, 0.24, 0.12, 0.05, 0.035, 0.035])
# EXIF MeteringMode: 5 pattern, 2 centre-weighted, 3 spot, 1 average, 6 partial.
_METERING, _METERING_P = (5, 2, 3, 1, 6), np.array([0.6, 0.2, 0.08, 0.05, 0.07])
#: median angular velocity of a hand-held camera, rad/s (about 1 degree/s; drawn log-normal
#: per shot, sigma 0.5 in ln): the tremor for which the "1 / focal length" rule keeps the
#: blur near the 0.03 mm circle of confusion of 35 mm film
SHAKE_RAD_S = 0.02


@dataclass(frozen=True)
class Shot:
    lens: Lens
    focal_length: Fraction
    fnumber: Fraction
    exposure_time: Fraction
    iso: int
    exposure_bias: Fraction
    exposure_error_ev: float  # actual exposure minus the meter's target, in stops
    flash: int
    metering_mode: int
    exposure_mode: int
    exposure_program: int
    white_balance: int  # 0 auto, 1 manual (a preset)
    wb_preset: str  # "" when auto
    scene_capture_type: int
    lighting: str
    kelvin: float
    ev100: float
    focal_35mm: int
    datetime: str
    tripod: bool = False
    #: the photographer's hand: angular velocity (rad/s) and direction (rad) of the camera's
    #: shake during the exposure (0 on a tripod)
    shake_rad_s: float = 0.0
    shake_angle: float = 0.0

    @property
    def flash_fired(self) -> bool:
        return bool(self.flash & 1)


def _nearest(values: tuple[Fraction, ...], target: float) -> Fraction:
    return min(values, key=lambda v: abs(math.log(float(v)) - math.log(max(target, 1e-9))))


def _focal(lens: Lens, rng: np.random.Generator, crop: float) -> Fraction:
    if lens.max_focal <= lens.min_focal:
        f = lens.min_focal
    else:  # zooms rest at their ends more often than in between
        u = rng.choice([0.0, 1.0, rng.uniform()], p=[0.35, 0.25, 0.4])
        f = math.exp(math.log(lens.min_focal) + u * (math.log(lens.max_focal) - math.log(lens.min_focal)))
    return Fraction(round(f)) if crop < 2 else Fraction(round(f * 10), 10)


def _widest(lens: Lens, focal: float) -> float:
    """Variable-aperture zooms lose about a stop towards the long end."""
    if lens.max_focal <= lens.min_focal:
        return lens.min_fnumber
    frac = (math.log(focal) - math.log(lens.min_focal)) / (math.log(lens.max_focal) - math.log(lens.min_focal))
    return lens.min_fnumber * (1.0 + 0.4 * frac * (lens.min_fnumber >= 3.5))


def _apertures(lens: Lens, focal: float) -> tuple[Fraction, ...]:
    lo = _widest(lens, focal)
    within = tuple(n for n in FNUMBERS if lo * 0.97 <= float(n) <= lens.max_fnumber * 1.03)
    return within or (_nearest(FNUMBERS, lo),)


def _choose_lighting(rng: np.random.Generator, scene_mean: float) -> Lighting:
    # Dark scene content is more likely to have been lit by a dim, warm light.
    dark = float(np.clip((0.35 - scene_mean) / 0.3, 0.0, 1.0))
    p = _LIGHTING_P * np.array([1 - 0.6 * dark, 1, 1, 1 + dark, 1 + dark, 1 + 3 * dark])
    return LIGHTINGS[rng.choice(len(LIGHTINGS), p=p / p.sum())]


def _flash(rng: np.random.Generator, ev100: float, program: int) -> int:
    """EXIF Flash: 0 none, 16 off, 24 auto not fired, 25 auto fired, 9 forced on."""
    if program == 1:
        return int(rng.choice([0, 16, 9], p=[0.5, 0.4, 0.1]))
    if ev100 < 8.0:
        return int(rng.choice([25, 24, 16, 9], p=[0.45, 0.2, 0.25, 0.1]))
    return int(rng.choice([16, 24, 0, 9], p=[0.45, 0.35, 0.17, 0.03]))


def _auto_iso(camera: Camera, needed: float, cap: int = 6400) -> int:
    isos = [i for i in camera.isos if i <= max(cap, camera.isos[0])]
    base = min((i for i in isos if i >= 100), default=isos[0])
    return min((i for i in isos if i >= needed and i >= base), default=isos[-1])


def _expose(camera: Camera, rng: np.random.Generator, program: int, ev: float, focal35: float,
            apertures: tuple[Fraction, ...], flash_fired: bool, tripod: bool) -> tuple[Fraction, Fraction, int]:
    """(f-number, exposure time, ISO) for a target exposure ``ev`` (EV100, bias included)."""
    hand_limit = 30.0 if tripod else 1.0 / max(focal35, 10.0)
    if program == 1:  # manual: the photographer's ISO and aperture, a shutter time near the meter's
        n = apertures[rng.integers(len(apertures))]
        iso = int(rng.choice(camera.isos[: max(1, len(camera.isos) * 2 // 3)]))
        t = float(n) ** 2 / (2.0**ev * iso / 100.0) * 2.0 ** rng.normal(0, 0.5)
        return n, _nearest(SHUTTER_TIMES, t), iso
    if program in (3, 7):
        n = apertures[0] if program == 7 else apertures[rng.integers(len(apertures))]
    elif program == 4:
        t_wanted = float(rng.choice([1 / 1000, 1 / 500, 1 / 250, 1 / 125, 1 / 60]))
        n = _nearest(apertures, math.sqrt(t_wanted * 2.0**ev))
    else:  # program / landscape: stop down in bright light, open up in dim light
        target = 8.0 if program == 8 else float(np.clip(2.0 ** ((ev - 5.0) / 3.0), 1.0, 11.0))
        n = _nearest(apertures, max(target, float(apertures[0])))
    base = _auto_iso(camera, 100)
    t = float(n) ** 2 / (2.0**ev * base / 100.0)
    limit = 1 / 60 if flash_fired else hand_limit
    iso = base if t <= limit else _auto_iso(camera, base * t / limit)
    t = float(n) ** 2 / (2.0**ev * iso / 100.0)
    if flash_fired:
        t = min(max(t, 1 / 200), 1 / 60)  # sync speed; the flash makes up the rest
    return n, _nearest(SHUTTER_TIMES, t), iso


def _scene_type(rng: np.random.Generator, program: int, ev: float, tripod: bool) -> int:
    """EXIF SceneCaptureType: 0 standard, 1 landscape, 2 portrait, 3 night."""
    if program in (7, 8):
        return 2 if program == 7 else 1
    if tripod and ev < 6:
        return 3
    return int(rng.choice([0, 1, 2], p=[0.84, 0.08, 0.08]))


def _datetime(rng: np.random.Generator, lighting: str) -> str:
    day = int(rng.integers(0, 365 * 18))
    year, rest = 2006 + day // 365, day % 365
    month, mday = 1 + rest // 31 % 12, 1 + rest % 28
    hour = int(rng.integers(19, 24)) if lighting in ("night", "tungsten") else int(rng.integers(8, 18))
    return f"{year:04d}:{month:02d}:{mday:02d} {hour:02d}:{int(rng.integers(60)):02d}:{int(rng.integers(60)):02d}"


def sample_shot(camera: Camera, rng: np.random.Generator, scene_mean: float = 0.4) -> Shot:
    """Draw a physically consistent set of shot parameters for ``camera``."""
    lens = camera.lenses[rng.integers(len(camera.lenses))]
    focal = _focal(lens, rng, camera.crop_factor)
    focal35 = int(round(float(focal) * camera.crop_factor))
    lighting = _choose_lighting(rng, scene_mean)
    ev100 = float(rng.uniform(*lighting.ev100))
    program = int(rng.choice(_PROGRAMS, p=_PROGRAM_P))
    bracket = program in (2, 3, 4) and rng.uniform() < 0.02
    bias = Fraction(0) if program == 1 else (
        _BIASES[rng.integers(len(_BIASES))] if bracket else _BIASES[rng.choice(len(_BIASES), p=_BIAS_P)])
    flash = _flash(rng, ev100, program)
    tripod = lighting.name == "night" and not flash & 1 and rng.uniform() < 0.5
    n, t, iso = _expose(camera, rng, program, ev100 - float(bias), focal35, _apertures(lens, float(focal)),
                        bool(flash & 1), tripod)
    error = math.log2(float(t) * iso / 100.0 / float(n) ** 2) + ev100
    tripod = tripod or float(t) > 0.5  # nobody hand-holds a long exposure: the camera rests on something
    manual_wb = rng.uniform() < 0.25
    presets = dict(camera.wb_presets)
    preset = next((p for p in lighting.preset if p in presets), lighting.preset[0]) if manual_wb else ""
    if flash & 1 and manual_wb:
        preset = "Flash"
    if manual_wb and rng.uniform() < 0.15:  # the wrong preset, left on from an earlier scene
        preset = str(rng.choice(["Daylight", "Tungsten", "Cloudy", "Shade"]))
    return Shot(lens=lens, focal_length=focal, fnumber=n, exposure_time=t, iso=iso, exposure_bias=bias,
                exposure_error_ev=error, flash=flash, metering_mode=int(rng.choice(_METERING, p=_METERING_P)),
                exposure_mode=1 if program == 1 else (2 if bracket else 0), exposure_program=program,
                white_balance=int(manual_wb), wb_preset=preset,
                scene_capture_type=_scene_type(rng, program, ev100, tripod), lighting=lighting.name,
                kelvin=float(rng.uniform(*lighting.kelvin)), ev100=ev100, focal_35mm=focal35,
                datetime=_datetime(rng, lighting.name), tripod=tripod,
                shake_rad_s=0.0 if tripod else float(np.exp(rng.normal(np.log(SHAKE_RAD_S), 0.5))),
                shake_angle=float(rng.uniform(0.0, np.pi)))

"""Every physical constant of the XMM-OM simulator, with its unit and source, in frozen dataclasses.

Sources quoted below: UHB = XMM-Newton Users Handbook §3.5 (detector, imaging, Table 20 count
rates); Mason et al. 2001 (A&A 365, L36: zero points, 6-sigma limits, central enhancement); SAS
``omqualitymap`` (read-out streak / smoke-ring / mod-8 rules); MSSL SUSS quality-flag notes
(read-out < 1.58 % of the exposure); XAMI reference notes §1.4-1.7 (image mix, exposures, class
frequencies and spatial priors of the released dataset). Values marked [estimate] were chosen to
agree with those numbers and with the look of real frames (``shared/tools/realism.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xami.instrument import (
    CENTRAL_RING_SIZE,
    CENTRAL_RING_XY,
    DETECTOR_PIXELS,
    PIXEL_SCALE_ARCSEC,
    SMOKE_RING_MIN_PARENT_DISTANCE,
    SMOKE_RING_OFFSET,
)

ARCMIN_PX = 60.0 / PIXEL_SCALE_ARCSEC
"""Unbinned OM pixels per arcminute (126.0)."""

CENTRE = DETECTOR_PIXELS / 2.0
"""Field centre in continuous unbinned pixel coordinates (x = y = 1024)."""

SPECTRAL_TYPES = ("B0", "A0", "F0", "G0", "K0", "M0")
"""Spectral types of UHB Table 20."""


@dataclass(frozen=True)
class FilterModel:
    """Per-filter constants.

    Attributes
    ----------
    letter : str
        XAMI filter letter.
    images : int
        Images of this filter in the released dataset (reference notes §1.5): the filter mix.
    median_exposure : float
        Median EXPOSURE, s (reference notes §1.7).
    sky_rate : float
        Sky + detector background, counts/s per unbinned pixel. V, B, U from Mason et al. 2001's
        1000 s 6-sigma limits (V 21.0, B 22.0, U 21.5) with a 6-pixel (2.9") aperture; UV and White
        [estimate], set so that short UV exposures still collect a few counts per 512-pixel as the
        released frames show.
    rate_v20 : tuple of float
        Count rate, counts/s, of an m_V = 20 star of each of `SPECTRAL_TYPES` (UHB Table 20;
        White = sum of V, B, U and UVW1 [estimate]).
    bright_stars : float
        Mean number of stars with raw rate >= 60 counts/s on the detector (read-out-streak
        parents), fields averaged. Calibrated to the released masks per image of each filter
        (reference notes §1.5: U 9.5, V 8.6, B 10.9, W 3.7, S 3.6, M 3.9, L 5.3) split in the
        overall class proportions ROS 0.443 : SR 0.264 : SL 0.293.
    central_ring : float
        Probability that the central ring is bright enough to see (weak in the UV; overall 0.63).
    central_ring_level : float
        Central-ring surface brightness in units of the sky level (omscattered: the scattered-light
        template scales with the background) [estimate].
    """

    letter: str
    images: int
    median_exposure: float
    sky_rate: float
    rate_v20: tuple[float, ...]
    bright_stars: float
    central_ring: float
    central_ring_level: float


FILTER_MODELS: tuple[FilterModel, ...] = (
    FilterModel("U", 193, 5000.0, 1.7e-4, (0.8533, 0.2216, 0.1486, 0.1119, 0.0444, 0.0178),
                4.3, 0.80, 0.9),
    FilterModel("V", 102, 4500.0, 5.8e-4, (0.1555, 0.1510, 0.1473, 0.1473, 0.1452, 0.1392),
                4.1, 0.85, 0.7),
    FilterModel("B", 116, 5000.0, 9.2e-4, (0.6190, 0.5272, 0.3805, 0.3010, 0.2289, 0.1337),
                5.1, 0.85, 0.7),
    FilterModel("W", 3, 8300.0, 1.8e-3, (2.1925, 0.9956, 0.7130, 0.5820, 0.4214, 0.2924),
                1.5, 0.80, 0.6),
    FilterModel("S", 63, 8400.0, 1.0e-4, (0.0950, 0.0126, 0.00111, 0.000206, 0.0000112,
                                         0.0000069), 2.5, 0.30, 0.5),
    FilterModel("M", 175, 8000.0, 1.2e-4, (0.2276, 0.0316, 0.00393, 0.000869, 0.0000436,
                                          0.0000032), 2.1, 0.45, 0.5),
    FilterModel("L", 403, 6650.0, 2.2e-4, (0.5647, 0.0958, 0.0366, 0.0218, 0.00291, 0.00174),
                2.5, 0.58, 0.6),
)
MODEL_BY_LETTER: dict[str, FilterModel] = {f.letter: f for f in FILTER_MODELS}


@dataclass(frozen=True)
class ExposureConfig:
    """Exposure-time distribution (reference notes §1.7: 800-123200 s, median 6500, p5 1500,
    p95 35000; most common 5000 x81, 4000 x55, 4400 x38, 10000 x29 of 1000)."""

    log_sigma: float = 0.95  # ln-s scatter around the filter median; gives p5/p95 ~1400/31000 s
    minimum: float = 800.0  # s
    maximum: float = 123200.0  # s
    common: tuple[float, ...] = (5000.0, 4000.0, 4400.0, 10000.0)  # s
    common_weights: tuple[float, ...] = (81.0, 55.0, 38.0, 29.0)
    common_fraction: float = 0.2  # 203 of 1000 exposures take one of the common values
    step: float = 100.0  # s, exposures are multiples of this


@dataclass(frozen=True)
class LayoutConfig:
    """Observing layouts (UHB / XRPS: Rudi-5 image mode, full frame, single windows).

    Rudi-5: 5 exposures, each a large 2x2-binned window (at most 976 x 960 unbinned pixels)
    plus a small unbinned central window (< 2' x 2'); the large windows tile ~92 % of the field
    with a 16-pixel drift margin. Real median coverage of the released frames is 0.90.
    """

    kinds: tuple[str, ...] = ("rudi5", "full", "partial", "single", "central")
    weights: tuple[float, ...] = (0.58, 0.10, 0.12, 0.12, 0.08)  # "central": the small
    # unbinned central window alone inside zero (real frames show such 80-px islands)
    large_window: tuple[int, int] = (976, 960)  # unbinned pixels (x, y), XRPS maximum
    central_window: int = 236  # unbinned pixels, ~1.9' (< 2')
    jitter: float = 24.0  # unbinned pixels, rms placement scatter of the central large window
    seam: tuple[float, float] = (-6.0, 9.0)  # unbinned px, inner-edge offset of each quadrant
    exposure_spread: tuple[float, float] = (0.75, 1.0)  # per-exposure fraction of EXPOSURE
    full_margin: int = 8  # unbinned pixels lost at the edge of a full-frame image
    fov_probability: float = 0.5  # images whose corners are cut by the circular field of view
    fov_radius: tuple[float, float] = (1.02, 1.3)  # field radius / half the detector (uniform)


@dataclass(frozen=True)
class StarConfig:
    """Star field: V-band number counts, spectral mix, bright-star (artefact parent) process."""

    n_v20: float = 260.0  # stars (+ compact galaxies) with V < 20 per 17' x 17' field [estimate]
    counts_slope: float = 0.27  # d log10 N / dm at the faint end (galactic counts, high latitude)
    v_range: tuple[float, float] = (12.0, 24.0)  # mag, V range of the faint field
    type_weights: tuple[float, ...] = (0.03, 0.10, 0.20, 0.30, 0.25, 0.12)  # B0 A0 F0 G0 K0 M0
    density_shape: float = 1.5  # Gamma shape of the field-to-field bright-star density:
    # P(no read-out streak) = 0.38 with mean 2.65 in the released set (negative binomial)
    faint_floor: float = 0.35  # share of faint sources not following the stellar density
    bright_slope: float = 0.75  # N(>R) ~ R^-0.75 (dN/dm ~ 10^0.3m) for the bright stars
    bright_min_rate: float = 6.0  # counts/s, faintest star drawn by the bright-star process
    bright_max_rate: float = 2.0e4  # counts/s, about V = 7 (the brightest stars in OM fields)
    faint_max_rate: float = 6.0  # counts/s, brighter faint-field stars belong to the bright process
    target_probability: float = 0.3  # a bright X-ray target on axis (ROS prior: central column)
    target_rate: tuple[float, float] = (0.3, 600.0)  # counts/s, log-uniform
    outside_margin: float = 160.0  # unbinned pixels: stars drawn this far outside the detector
    galaxies: float = 12.0  # mean number of resolved galaxies per field [estimate, real frames]
    galaxy_size: tuple[float, float] = (1.5, 12.0)  # arcsec, effective radius (log-uniform)
    galaxy_rate: tuple[float, float] = (0.05, 8.0)  # counts/s in V (log-uniform)
    big_galaxy_probability: float = 0.12  # a large nearby galaxy (a target) in the field
    big_galaxy_size: tuple[float, float] = (15.0, 70.0)  # arcsec, its effective radius
    big_galaxy_rate: tuple[float, float] = (3.0, 120.0)  # counts/s in V (log-uniform)


@dataclass(frozen=True)
class PsfConfig:
    """Point-spread function (UHB: ~1.4-2" FWHM depending on filter) and detector non-linearity."""

    core_fwhm: float = 1.8  # arcsec, Gaussian core
    wing_fraction: float = 0.12  # flux in the Moffat wing
    wing_alpha: float = 5.0  # arcsec, Moffat core radius of the wing
    wing_beta: float = 1.8  # Moffat index of the wing (slow fall-off: extended halo)
    radius: float = 90.0  # arcsec, PSF stamp radius (the wing tapers to 0 there)
    frame_time: float = 0.011  # s, full-frame CCD frame time (UHB §3.5.2.1)
    ccd_pixel: int = 8  # unbinned pixels per CCD pixel side (centroiding subdivides 8 x 8)
    dark_ring_depth: float = 0.5  # fractional deficit of the dark ring around saturated cores
    dark_ring_width: float = 3.0  # arcsec
    mod8_amplitude: float = 0.25  # fractional modulation at a 1000 count/s star [estimate]
    mod8_pattern: tuple[float, ...] = (0.6, 0.2, -0.1, -0.3, -0.5, -0.3, 0.1, 0.3)
    mod8_min_rate: float = 60.0  # counts/s, SAS bit 4 trigger
    spike_fraction: float = 4.0e-4  # flux in the four diffraction spikes [estimate]
    spike_min_rate: float = 70.0  # counts/s, SAS bit 3 trigger
    spike_extent: tuple[float, float] = (50.0, 250.0)  # unbinned px, radial (SAS bit 3 region)
    # per-image scatter of the optics (real frames vary in focus, halo and smoothing):
    core_fwhm_range: tuple[float, float] = (1.4, 2.6)  # arcsec, uniform
    wing_fraction_range: tuple[float, float] = (0.06, 0.3)  # log-uniform: from faint to broad halos
    blur_probability: float = 0.3  # frames smoothed after rebinning (resampled figures, JPEG)
    blur_sigma: tuple[float, float] = (0.3, 0.9)  # 512-px, Gaussian


@dataclass(frozen=True)
class ArtefactConfig:
    """Artefact physics and the visibility rule deciding which instances are labelled."""

    readout_fraction: float = 0.0158  # frame-transfer / frame time (MSSL: read-out < 1.58 %)
    streak_sigma: float = 5.0  # unbinned px, column profile of a streak (SAS flags 16 columns;
    # real labelled streaks are 6 [4-7] px wide at 512)
    streak_gap: tuple[float, float] = (44.0, 30.0)  # unbinned px: annotators leave the parent's
    # halo out, labelling the streak above and below it; gap half-height a + b log10(rate / 60)
    streak_min_rate: float = 60.0  # counts/s, SAS bit 1 trigger; fainter streaks not rendered
    streak_min_length: float = 48.0  # unbinned px: shorter visible parts are not labelled
    mask_level: float = 0.1  # mask = where the artefact exceeds this fraction of its peak
    ghost_efficiency: float = 4.0e-3  # smoke-ring flux / parent flux (window reflection); with
    # visible_ghost 0.8, labelled rings stand out as the real labelled ones (README "Real frames")
    ghost_min_rate: float = 60.0  # counts/s, SAS smoke-ring parent threshold
    ghost_radius: float = 13.5  # arcsec, outer radius of the visible annulus (SAS flags 38";
    # real labelled smoke rings are 15 [14-19] x 14 [12-16] px at 512; this gives 15 x 15)
    ghost_inner: float = 0.45  # inner / outer radius (secondary-mirror obstruction)
    ghost_offset: tuple[float, float] = (0.0, SMOKE_RING_OFFSET)  # offset = a + b r (arcsec,
    # per arcsec; real rings: b 0.21, no constant term)
    ghost_min_distance: float = SMOKE_RING_MIN_PARENT_DISTANCE * PIXEL_SCALE_ARCSEC  # arcsec
    # from the centre (136"): nearer, a ring lies in its parent's glare and is not labelled
    loop_min_rate: float = 70.0  # counts/s, loop parent threshold [estimate; 1.3-1.6 labelled
    # loops per image over seeds against the released 1.75]
    loop_efficiency: float = 6.0e-3  # loop flux / parent flux [estimate]
    loop_offaxis: tuple[float, float] = (12.0, 15.0)  # arcmin (paper §2)
    loop_distance: tuple[float, float] = (20.0, 450.0)  # arcsec, loop centre from the chamfer
    # axis (ring_xy) towards the parent, uniform: the released training loops' box heat map has
    # coverage radii 59 / 99 / 159 px (quartiles, 512 frame), this gives 55 / 101 / 157
    loop_size: tuple[float, float] = (40.0, 165.0)  # arcsec, semi-major axis (log-uniform;
    # real labelled loops are 49 [33-65] x 68 [46-89] px at 512)
    ring_xy: tuple[float, float] = CENTRAL_RING_XY  # unbinned px, fixed on the detector
    ring_size: tuple[float, float] = CENTRAL_RING_SIZE  # unbinned px, labelled full extent
    ring_size_scatter: float = 0.13  # ln-size rms
    ring_jitter: float = 8.0  # unbinned px, rms
    other_probability: float = 0.02  # images with 'other' scattered light (21 of 1055)
    # least mean signal / background noise per mask pixel for an instance to be labelled:
    visible_ring: float = 0.25
    visible_other: float = 0.15
    visible_streak: float = 0.8  # labelled streaks stand out as the real ones (README)
    visible_ghost: float = 0.8
    visible_loop: float = 0.25


@dataclass(frozen=True)
class SimConfig:
    """All simulator settings; the defaults reproduce the released XAMI data.

    Examples
    --------
    >>> SimConfig().psf.core_fwhm
    1.8
    """

    exposure: ExposureConfig = field(default_factory=ExposureConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    stars: StarConfig = field(default_factory=StarConfig)
    psf: PsfConfig = field(default_factory=PsfConfig)
    artefacts: ArtefactConfig = field(default_factory=ArtefactConfig)
    filters: tuple[FilterModel, ...] = FILTER_MODELS
    multi_filter: tuple[float, ...] = (0.826, 0.12, 0.04, 0.014)  # ObsIDs with 1-4 filters
    stretch_range: tuple[float, float] = (0.1, 0.6)  # Asinh parameter of each frame
    # (log-uniform; the authors' value is not recorded, xami's default is 0.25)
    # (reference notes §1.6: 144 of 827 ObsIDs have 2-4 filters)

"""The XMM-OM simulator: physically motivated frames with exact masks of all five artefact classes.

``simulate_image`` draws one image (frame, counts, masks, labels, WCS, true sources);
``simulate_dataset`` writes a dataset in the released COCO and YOLO-seg layouts (``xami simulate``).
"""

from xami.sim.config import SimConfig
from xami.sim.dataset import SimulationSummary, simulate_dataset
from xami.sim.image import SimulatedFrame, simulate_image

__all__ = ["SimConfig", "SimulatedFrame", "SimulationSummary", "simulate_dataset",
           "simulate_image"]

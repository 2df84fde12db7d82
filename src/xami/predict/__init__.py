"""``xami predict``: find the artefacts of many images and write the products astronomers use.

`xami.predict.inputs` turns paths, folders, globs and list files into inputs, `xami.predict.run`
predicts them (here, or on Dask workers through `xami.predict.cluster`), each with
`xami.predict.image`, which reads it with `xami.io.frames.load_input`;
`xami.predict.image_result` is the per-image record that makes runs resumable
(`xami.predict.resume`), `xami.predict.manifest` the table of all of them, and
`xami.predict.provenance` what a run states about its `xami.pipeline.PipelineSpec`.
"""

from xami.predict.cluster import dask_client
from xami.predict.config import PredictConfig
from xami.predict.image import process_image
from xami.predict.image_result import FORMATS, ImageResult
from xami.predict.inputs import FoundInput, expand_inputs, find_inputs
from xami.predict.manifest import write_manifest
from xami.predict.provenance import provenance
from xami.predict.run import run_predict
from xami.predict.summary import RunSummary

__all__ = [
    "FORMATS",
    "FoundInput",
    "ImageResult",
    "PredictConfig",
    "RunSummary",
    "dask_client",
    "expand_inputs",
    "find_inputs",
    "process_image",
    "provenance",
    "run_predict",
    "write_manifest",
]

"""Export: from a search's front to models that run anywhere.

`standalone` (one StableHLO model per architecture), `quantized` + `packing` (integer weight codes),
`finetune`, `sorted` + `slices` (SortedNet families in one set of weights), `stitched` +
`stitch_layers` + `stitch_training` (SN-Net families), and `load` (`load_family`, which reads any of
them back).
"""

"""The engine: what every run is made of.

``loop`` (the training step and loop, evaluation), ``estimate`` (scoring strategies with the
template's shared weights), ``sharing`` (prefix-shared scoring and racing), ``cost`` (params and
MACs), ``checkpoint`` (atomic, verified safetensors checkpoints), ``distributed`` (torchrun).
"""

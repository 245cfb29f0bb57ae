"""The template: one gated network holding every fusion strategy of its space.

``network`` (the gated DenseNet / ResNet-bottleneck template, its relaxation, sampling and
extraction), ``fewshot`` (the space split on one layer, one template per part).
"""

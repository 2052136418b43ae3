"""The CNNDetection recipe (Wang et al., CVPR 2020, github.com/PeterWang512/CNNDetection),
shared by the ``cnnspot``, ``npr`` and ``univfd`` baselines, which all fork its code base.

Kept in ``harness`` so that no detector plugin imports another: ``recipe`` (image side:
augmentation, crops, normalisation, batched scoring), ``training`` (loop and schedules),
``weights`` (reading the authors' checkpoint files) and ``classifier`` (a trainable
single-logit CNN detector).
"""

"""Diffusion for the vocoder: schedules, samplers as pure functions, schedule search, distillation.

- :mod:`.schedules` β schedules, ᾱ, noise levels √ᾱ, the continuous training levels
- :mod:`.noise`     Gaussian noise keyed by (seed, step, sample position)
- :mod:`.training`  the noise-prediction L1 objective and frame/sample alignment
- :mod:`.samplers`  ``sample(model, mel, schedule, generator)``, chunked ``vocode``
- :mod:`.search`    few-step schedule search on held-out clips
- :mod:`.distill`   1–2-step students regressed onto the teacher's output
"""

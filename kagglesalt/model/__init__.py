"""Models and their training: the settings a run is made of (`settings`, `experiments`), a
registered model (`spec`), the Keras backend and device (`backend`), the images as the model
sees them (`inputs`, `augment`), the losses, the stage plan and time budget (`schedule`,
`budget`), one fold's trainer (`batches`, `callbacks`, `fold`, and the records it produces,
`results`) and prediction with flip TTA (`inference`).

Only this layer and the plugins import Keras; `settings`, `experiments`, `spec`,
`schedule`, `budget` and `results` load without it."""

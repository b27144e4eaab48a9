"""The MLflow pyfunc wrapper, logged as code ("models from code"), never pickled.

``mlflow.pyfunc.load_model("models:/credit-risk@production").predict(frame)``
returns the probability of default per row. The model itself is the
plain-data folder read by :class:`credit_risk.scoring.ScoringModel`.
"""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from credit_risk.scoring import ScoringModel


class CreditRiskModel(mlflow.pyfunc.PythonModel):
    """Probability of default for a frame of applicants (schema codes)."""

    def load_context(self, context):
        self._model = ScoringModel.load(Path(context.artifacts["scoring_model"]))

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return np.asarray(self._model.predict_frame(frame), dtype=np.float64)


mlflow.models.set_model(CreditRiskModel())

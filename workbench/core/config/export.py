"""The export formats Workbench offers, their file names and the largest difference each may show."""

FORMATS = ("keras", "savedmodel", "tflite", "tflite-dynamic")
TOLERANCE = {"keras": 1e-4, "savedmodel": 1e-4, "tflite": 1e-4, "tflite-dynamic": 0.05}
FILE_NAMES = {"keras": "model.keras", "savedmodel": "saved_model", "tflite": "model.tflite",
              "tflite-dynamic": "model.tflite"}
LABELS_FILE = "labels.txt"

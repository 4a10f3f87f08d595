"""Three-layer perceptron: Linear-ReLU-Linear-ReLU-Linear."""

import torch
import torch.nn as nn

batch_size = 4096
in_features = 4096
hidden1 = 4096
hidden2 = 4096
out_features = 1024

SIZES = {
    "cpu": {"batch_size": 32, "in_features": 64, "hidden1": 128, "hidden2": 96, "out_features": 10}
}
HOLDOUT = [{"batch_size": 5, "in_features": 33, "hidden1": 47, "hidden2": 29, "out_features": 7}]


class Model(nn.Module):
    """y = fc3(relu(fc2(relu(fc1(x))))); every layer has a bias."""

    def __init__(self, in_features, hidden1, hidden2, out_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden1)
        self.fc2 = nn.Linear(hidden1, hidden2)
        self.fc3 = nn.Linear(hidden2, out_features)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, hidden1, hidden2, out_features]

"""Draws the primer's change-of-variables figure (docs/primer-lognormal.svg):
X ~ N(0, 1), Y = exp(X); p_Y(y) = p_X(log y) / y next to a histogram of exp-transformed samples.
Run with numpy and matplotlib: python3 docs/make_primer_figure.py"""
import numpy as np
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt

rng = np.random.default_rng(0)
x = rng.standard_normal(200_000)
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
grid = np.linspace(-4, 4, 400)
left.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), color="#3b528b")
left.hist(x, bins=120, density=True, color="#3b528b", alpha=0.25)
left.set_title("X ~ N(0, 1):  p_X(x)")
y = np.linspace(1e-3, 6, 600)
right.plot(y, np.exp(-np.log(y)**2 / 2) / np.sqrt(2 * np.pi) / y, color="#21918c", label="p_X(log y) / y")
right.hist(np.exp(x), bins=np.linspace(0, 6, 121), density=True, color="#21918c", alpha=0.25, label="samples of exp(X)")
right.set_title("Y = exp(X):  p_Y(y) = p_X(log y) · |d log y / dy|")
right.legend(frameon=False)
for ax in (left, right):
    ax.spines[["top", "right"]].set_visible(False)
fig.tight_layout()
fig.savefig("docs/primer-lognormal.svg")

"""The package formats and the distributions that install them: payload compressions, targets and
what their tools read, rpmlib() features, each format's version order, and the CI test images."""

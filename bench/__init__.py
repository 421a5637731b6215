"""The benchmark: a loopback fixture and a driver that scores fdawatch against it."""

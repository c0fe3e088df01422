import NormalizingFlows
print("flows")

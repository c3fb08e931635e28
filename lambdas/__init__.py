"""AWS Lambda functions of VoxRelay."""

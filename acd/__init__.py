"""The automatic call distributor: routing decisions (pure), agent states, and the AMI adapter."""

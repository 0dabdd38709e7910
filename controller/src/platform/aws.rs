//! The AWS platform (ECS, ELBv2, SSM, S3).

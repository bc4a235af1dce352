terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.69, < 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.8, < 3.0"
    }
  }
}

# The data account: the bucket, the Lambda function and its role.
provider "aws" {
  alias               = "data"
  region              = var.aws_region
  profile             = var.data_account_profile
  allowed_account_ids = [var.data_account_id]

  default_tags {
    tags = {
      app     = "dag-trigger"
      example = "cross-account-s3-to-mwaa"
    }
  }
}

# The Airflow account: the MWAA environment, and the role the function assumes to call it.
provider "aws" {
  alias               = "airflow"
  region              = var.aws_region
  profile             = var.airflow_account_profile
  allowed_account_ids = [var.airflow_account_id]

  default_tags {
    tags = {
      app     = "dag-trigger"
      example = "cross-account-s3-to-mwaa"
    }
  }
}

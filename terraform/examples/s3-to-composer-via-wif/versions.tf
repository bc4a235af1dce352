terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.69, < 7.0"
    }
    google = {
      source  = "hashicorp/google"
      version = ">= 8.7, < 9.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.8, < 3.0"
    }
  }
}

# The AWS account of the bucket and the Lambda function.
provider "aws" {
  region              = var.aws_region
  profile             = var.aws_profile
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = {
      app     = "dag-trigger"
      example = "s3-to-composer-via-wif"
    }
  }
}

# The Google Cloud project of the workload identity pool and the service account the function impersonates.
provider "google" {
  project = var.project
}

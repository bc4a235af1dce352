terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 8.7, < 9.0"
    }
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

# The Google Cloud project of the bucket and the Cloud Run function.
provider "google" {
  project = var.project
  region  = var.region
}

# The AWS account and region of the MWAA environment, where the role the function assumes is created.
provider "aws" {
  region              = var.aws_region
  profile             = var.aws_profile
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = {
      app     = "dag-trigger"
      example = "gcs-to-mwaa-via-web-identity"
    }
  }
}

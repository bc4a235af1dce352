variable "project" {
  type        = string
  description = "The Google Cloud project of the landing bucket, the function and its service accounts."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project ID."
  }
}

variable "region" {
  type        = string
  description = "The function's region, e.g. europe-west1."
}

variable "name" {
  type        = string
  description = "The function's name (unique in the project); its runtime service account is NAME-run (cut and hashed past 25 characters)."
  default     = "dag-trigger-mwaa"
}

variable "bucket" {
  type        = string
  description = "The existing Cloud Storage bucket (in project) whose new objects (google.cloud.storage.object.v1.finalized) trigger the DAG."
}

variable "bucket_location" {
  type        = string
  description = "The bucket's location, lowercase (europe-west1, or eu, us, eur4 ... for multi- and dual-region buckets): where the Eventarc trigger must be. Default: region."
  default     = null
}

variable "prefix" {
  type        = string
  description = "Only objects whose name starts with this trigger the DAG, e.g. incoming/. Default: every object."
  default     = null
}

variable "aws_region" {
  type        = string
  description = "The MWAA environment's region: the function calls STS and MWAA there (AWS_REGION)."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region such as eu-west-1."
  }
}

variable "aws_account_id" {
  type        = string
  description = "The AWS account of the MWAA environment (the provider refuses to act in any other)."

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be a 12-digit AWS account id."
  }
}

variable "aws_profile" {
  type        = string
  description = "The AWS CLI profile for that account; null: the default credential chain."
  default     = null
}

variable "mwaa_environment" {
  type        = string
  description = "The MWAA environment's name, in aws_account_id and aws_region."

  validation {
    condition     = can(regex("^[a-zA-Z][0-9a-zA-Z_-]{0,79}$", var.mwaa_environment))
    error_message = "mwaa_environment must be an MWAA environment name (a letter, then letters, digits, hyphens and underscores)."
  }
}

variable "mwaa_airflow_role" {
  type        = string
  description = "The Airflow role the function acts as through InvokeRestApi: User (the least that may create DAG runs), Op or Admin."
  default     = "User"

  validation {
    condition     = contains(["User", "Op", "Admin"], var.mwaa_airflow_role)
    error_message = "mwaa_airflow_role must be User, Op or Admin."
  }
}

variable "aws_role_name" {
  type        = string
  description = "The name of the IAM role the function assumes with its Google ID token."
  default     = "dag-trigger-from-gcp"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.aws_role_name))
    error_message = "aws_role_name must be an IAM role name (1 to 64 of letters, digits and +=,.@_-)."
  }
}

variable "audience" {
  type        = string
  description = "The audience of the function's Google ID token (WEB_IDENTITY_AUDIENCE), which the role's trust policy requires as accounts.google.com:oaud."
  default     = "sts.amazonaws.com"
}

variable "dag_id" {
  type        = string
  description = "The DAG each new object triggers, with the object in its conf."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,250}$", var.dag_id))
    error_message = "dag_id must be an Airflow DAG id: letters, digits, dots, hyphens and underscores."
  }
}

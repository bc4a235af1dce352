variable "aws_region" {
  type        = string
  description = "The region of the bucket and the Lambda function."

  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a commercial AWS region such as eu-west-1 (Google STS verifies requests signed for the aws partition)."
  }
}

variable "aws_account_id" {
  type        = string
  description = "The AWS account of the bucket and the function (the provider refuses to act in any other; the workload identity provider trusts only it)."

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

variable "function_name" {
  type        = string
  description = "The Lambda function's name; its execution role has the same name. At most 43 characters: Google caps google.subject (the session's ARN, arn:aws:sts::ACCOUNT:assumed-role/ROLE/FUNCTION) at 127."
  default     = "dag-trigger-composer"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,43}$", var.function_name))
    error_message = "function_name must be 1 to 43 letters, digits, hyphens and underscores (the session ARN Google maps to google.subject must stay within 127 characters)."
  }
}

variable "bucket" {
  type        = string
  description = "The existing S3 bucket whose new objects trigger the DAG. Its notification configuration is replaced (see README)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be a bucket name, not an ARN or s3:// URL."
  }
}

variable "key_prefix" {
  type        = string
  description = "Only objects whose key starts with this trigger (e.g. incoming/); null: any key."
  default     = null
}

variable "key_suffix" {
  type        = string
  description = "Only objects whose key ends with this trigger (e.g. .csv); null: any key."
  default     = null
}

variable "project" {
  type        = string
  description = "The Google Cloud project of the workload identity pool and the service account."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project ID."
  }
}

variable "composer_environment" {
  type        = string
  description = "The Cloud Composer environment, projects/PROJECT/locations/REGION/environments/NAME: the function reads its Airflow URL through the Composer API, and the service account gets roles/composer.user on PROJECT."

  validation {
    condition     = can(regex("^projects/[^/]+/locations/[^/]+/environments/[^/]+$", var.composer_environment))
    error_message = "composer_environment must be projects/PROJECT/locations/REGION/environments/NAME."
  }
}

variable "dag_id" {
  type        = string
  description = "The DAG every matching object triggers, with the object in its conf."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,250}$", var.dag_id))
    error_message = "dag_id must be an Airflow DAG id: letters, digits, dots, hyphens and underscores."
  }
}

variable "service_account_id" {
  type        = string
  description = "The account ID (the part before @) of the Google service account the function impersonates."
  default     = "dag-trigger-aws"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "service_account_id must be 6 to 30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "pool_id" {
  type        = string
  description = "The workload identity pool's ID. A deleted pool keeps its ID for 30 days: after a destroy, apply again with another ID (or undelete the pool)."
  default     = "dag-trigger-aws"

  validation {
    condition     = can(regex("^[a-z0-9-]{4,32}$", var.pool_id)) && !startswith(var.pool_id, "gcp-")
    error_message = "pool_id must be 4 to 32 lowercase letters, digits and hyphens, not starting with gcp-."
  }
}

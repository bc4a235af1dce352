variable "aws_region" {
  type        = string
  description = "The region of the bucket, the function and the MWAA environment (with environment variables for configuration, MWAA is called in the function's own region)."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region such as eu-west-1."
  }
}

variable "function_name" {
  type        = string
  description = "The Lambda function's name (its role, log group and on-failure queue are named after it)."
  default     = "dag-trigger"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.function_name))
    error_message = "function_name must be 1 to 56 letters, digits, hyphens and underscores."
  }
}

variable "bucket" {
  type        = string
  description = "The existing bucket whose new objects trigger the DAG. Its notification configuration is replaced by this one (see README): use a bucket with no other notifications."

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

variable "mwaa_environment" {
  type        = string
  description = "The MWAA environment's name, in this account and region."

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

variable "dag_id" {
  type        = string
  description = "The DAG every matching object triggers, with the object in its conf."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,250}$", var.dag_id))
    error_message = "dag_id must be an Airflow DAG id: letters, digits, dots, hyphens and underscores."
  }
}

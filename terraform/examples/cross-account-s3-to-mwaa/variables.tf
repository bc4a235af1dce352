variable "aws_region" {
  type        = string
  description = "The region of the bucket and the function, and of the MWAA environment: configured by environment variables, the function calls MWAA in its own region."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region such as eu-west-1."
  }
}

variable "data_account_id" {
  type        = string
  description = "The account of the bucket and the function (the provider refuses to act in any other)."

  validation {
    condition     = can(regex("^[0-9]{12}$", var.data_account_id))
    error_message = "data_account_id must be a 12-digit AWS account id."
  }
}

variable "airflow_account_id" {
  type        = string
  description = "The account of the MWAA environment and of the role the function assumes (the provider refuses to act in any other)."

  validation {
    condition     = can(regex("^[0-9]{12}$", var.airflow_account_id))
    error_message = "airflow_account_id must be a 12-digit AWS account id."
  }
}

variable "data_account_profile" {
  type        = string
  description = "The AWS CLI profile for the data account; null: the default credential chain."
  default     = null
}

variable "airflow_account_profile" {
  type        = string
  description = "The AWS CLI profile for the Airflow account; null: the default credential chain."
  default     = null
}

variable "function_name" {
  type        = string
  description = "The Lambda function's name in the data account (its role and log group are named after it)."
  default     = "dag-trigger"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.function_name))
    error_message = "function_name must be 1 to 56 letters, digits, hyphens and underscores."
  }
}

variable "bucket" {
  type        = string
  description = "The existing bucket in the data account whose new objects trigger the DAG. Its notification configuration is replaced (see README)."

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
  description = "The MWAA environment's name, in the Airflow account."

  validation {
    condition     = can(regex("^[a-zA-Z][0-9a-zA-Z_-]{0,79}$", var.mwaa_environment))
    error_message = "mwaa_environment must be an MWAA environment name (a letter, then letters, digits, hyphens and underscores)."
  }
}

variable "mwaa_airflow_role" {
  type        = string
  description = "The Airflow role the assumed role acts as through InvokeRestApi: User (the least that may create DAG runs), Op or Admin."
  default     = "User"

  validation {
    condition     = contains(["User", "Op", "Admin"], var.mwaa_airflow_role)
    error_message = "mwaa_airflow_role must be User, Op or Admin."
  }
}

variable "airflow_role_name" {
  type        = string
  description = "The name of the role created in the Airflow account for the function to assume."
  default     = "dag-trigger-invoker"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.airflow_role_name))
    error_message = "airflow_role_name must be an IAM role name (1 to 64 of letters, digits and +=,.@_-)."
  }
}

variable "external_id" {
  type        = string
  description = "The sts:ExternalId the Airflow account's role requires of the function (ASSUME_ROLE_EXTERNAL_ID). Not a secret, but pick one per trust relationship."

  validation {
    condition     = length(var.external_id) >= 2 && length(var.external_id) <= 1224 && can(regex("^[A-Za-z0-9+=,.@:/_-]+$", var.external_id))
    error_message = "external_id must be 2 to 1224 letters, digits and +=,.@:/_- (STS's rule)."
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

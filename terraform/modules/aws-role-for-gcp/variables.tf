variable "name" {
  type        = string
  description = "The IAM role's name (unique in the account)."
  default     = "dag-trigger-from-gcp"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.name))
    error_message = "name must be an IAM role name: 1 to 64 of letters, digits and +=,.@_-."
  }
}

variable "google_service_account_unique_id" {
  type        = string
  description = "The numeric unique ID of the Google service account the Cloud Run function runs as (google_service_account.unique_id; the gcp-function module's runtime_service_account_unique_id output). Its Google-signed ID tokens carry it as sub and azp, which the trust policy requires as accounts.google.com:sub and accounts.google.com:aud. Not its email: an email can be deleted and taken by a new account, the unique ID cannot."

  validation {
    condition     = can(regex("^[0-9]{21}$", var.google_service_account_unique_id))
    error_message = "google_service_account_unique_id must be the service account's 21-digit unique ID (not its email)."
  }
}

variable "audience" {
  type        = string
  description = "The audience the function asks the metadata server's ID token for (its WEB_IDENTITY_AUDIENCE, [airflow].web_identity_audience): the token's aud, which the trust policy requires as accounts.google.com:oaud."
  default     = "sts.amazonaws.com"

  validation {
    condition     = length(trimspace(var.audience)) > 0 && !can(regex("[[:space:]]", var.audience))
    error_message = "audience must be a non-empty string without spaces (sts.amazonaws.com by default)."
  }
}

variable "mwaa_environment" {
  type        = string
  description = "The Amazon MWAA environment the role may trigger DAGs in, in this account and the provider's region."

  validation {
    condition     = can(regex("^[a-zA-Z][0-9a-zA-Z_-]{0,79}$", var.mwaa_environment))
    error_message = "mwaa_environment must be an MWAA environment name: 1 to 80 letters, digits, hyphens and underscores, starting with a letter."
  }
}

variable "mwaa_airflow_role" {
  type        = string
  description = "The Airflow role MWAA acts as for InvokeRestApi (part of the IAM resource, arn:...:airflow:REGION:ACCOUNT:role/ENVIRONMENT/ROLE): User (the least that may create DAG runs), Op or Admin."
  default     = "User"

  validation {
    condition     = contains(["User", "Op", "Admin"], var.mwaa_airflow_role)
    error_message = "mwaa_airflow_role must be User, Op or Admin: Viewer and Public cannot create DAG runs."
  }
}

variable "mwaa_transport" {
  type        = string
  description = "How the function calls MWAA (its MWAA_TRANSPORT): invoke_rest_api (airflow:InvokeRestApi on the Airflow role) or cli_token (airflow:CreateCliToken on the environment, for a dag_id over about 50 characters)."
  default     = "invoke_rest_api"

  validation {
    condition     = contains(["invoke_rest_api", "cli_token"], var.mwaa_transport)
    error_message = "mwaa_transport must be invoke_rest_api or cli_token."
  }
}

variable "max_session_duration" {
  type        = number
  description = "The longest session the role allows, in seconds (3600 to 43200). The function asks for the default hour and refreshes before it ends."
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200 && floor(var.max_session_duration) == var.max_session_duration
    error_message = "max_session_duration must be a whole number of seconds from 3600 to 43200."
  }
}

variable "permissions_boundary_arn" {
  type        = string
  description = "A permissions boundary (managed policy ARN) for the role, if your organisation requires one."
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be a managed policy ARN, arn:aws:iam::ACCOUNT:policy/NAME."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for the role (app = dag-trigger is added)."
  default     = {}
}
